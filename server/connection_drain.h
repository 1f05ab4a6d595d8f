#pragma once
// ConnectionDrain: the open connections of one event loop, for its graceful stop. Each connection
// joins with what it does when the loop stops (ScreenedConnection: close if idle, else close once
// answered) and leaves when it closes; start() asks every member, and each that joins later, to
// do it. The loop ends once size() is 0: every connection it accepted was answered or closed
// idle, none dropped with a request in it. One loop thread; members leave before it is destroyed.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

namespace forklock {

class ConnectionDrain final {
public:
    using Id = std::uint64_t;

    Id join(std::function<void()> on_drain)
    {
        members_.emplace(next_, std::move(on_drain));
        return next_++;
    }
    void leave(Id id) { members_.erase(id); }

    // Calls every member's on_drain (which may close it, and so leave: the ids are copied first).
    void start()
    {
        started_ = true;
        std::vector<Id> ids;
        for (const auto& [id, fn] : members_) ids.push_back(id);
        for (Id id : ids)
            if (auto it = members_.find(id); it != members_.end()) it->second();
    }
    [[nodiscard]] bool started() const noexcept { return started_; }
    [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }

private:
    std::map<Id, std::function<void()>> members_;
    Id next_ = 0;
    bool started_ = false;
};

} // namespace forklock
