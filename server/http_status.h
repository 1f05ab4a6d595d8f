#pragma once
// The reason phrase of an HTTP status, for the status line: one table for the answers evhttp sends
// and for those the request screen and the simple path write themselves.

namespace forklock {

// reason_phrase: RFC 9110's phrase for `status`, or "Unknown" for a status this server never sends.
const char* reason_phrase(int status) noexcept;

} // namespace forklock
