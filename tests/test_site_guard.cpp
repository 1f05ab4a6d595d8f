// The site checks of site_guard.h as plain functions: which Host is answered, which request is
// cross-site, when the dashboard page may carry the token, and what the access log masks.

#include <catch2/catch.hpp>

#include "app/api.h"
#include "app/site_guard.h"

using namespace forklock;

namespace {

Options bound_to(std::string host, std::vector<std::string> allowed = {})
{
    Options o;
    o.bind.host = std::move(host);
    o.allowed_hosts = std::move(allowed);
    return o;
}

Request post(std::optional<std::string> host, std::optional<std::string> origin,
             std::string fetch_site = "")
{
    Request r{"POST", "/control/kill", "pid=1"};
    r.host = std::move(host);
    r.origin = std::move(origin);
    r.fetch_site = std::move(fetch_site);
    return r;
}

} // namespace

TEST_CASE("host_refusal: a loopback-bound server answers loopback names and addresses only",
          "[site_guard]")
{
    const HostPolicy policy = host_policy(bound_to("127.0.0.1"));
    for (const char* host : {"localhost", "localhost:8000", "LOCALHOST.", "app.localhost:1",
                             "127.0.0.1", "127.0.0.1:8000", "127.9.8.7", "[::1]", "[::1]:8000",
                             "[::ffff:127.0.0.1]:80"}) {
        INFO(host);
        CHECK_FALSE(host_refusal(std::string(host), policy));
    }
    for (const char* host : {"attacker.example", "attacker.example:8000", "localhost.evil.com",
                             "128.0.0.1", "127.1", "0.0.0.0", "[::2]", "10.0.0.1:8000"}) {
        INFO(host);
        const auto why = host_refusal(std::string(host), policy);
        REQUIRE(why);
        CHECK(why->find("--allowed-hosts") != std::string::npos);
    }
    CHECK_FALSE(host_refusal(std::nullopt, policy)); // HTTP/1.0 without Host: not a browser
    CHECK_FALSE(host_policy(bound_to("localhost")).any);
    CHECK_FALSE(host_policy(bound_to("::1")).any);
}

TEST_CASE("host_refusal: --allowed-hosts adds names, * and a non-loopback bind answer any",
          "[site_guard]")
{
    const HostPolicy listed = host_policy(bound_to("127.0.0.1", {"class.example"}));
    CHECK_FALSE(host_refusal(std::string("class.example:8000"), listed));
    CHECK_FALSE(host_refusal(std::string("Class.Example"), listed));
    CHECK_FALSE(host_refusal(std::string("localhost"), listed));
    CHECK(host_refusal(std::string("other.example"), listed));

    const HostPolicy any = host_policy(bound_to("127.0.0.1", {"*"}));
    CHECK(any.any);
    CHECK_FALSE(host_refusal(std::string("attacker.example"), any));
    CHECK(describe_host_policy(bound_to("127.0.0.1", {"*"})).find("any Host") !=
          std::string::npos);

    const Options wide = bound_to("0.0.0.0");
    CHECK(host_policy(wide).any);
    CHECK(describe_host_policy(wide).find("0.0.0.0 is not a loopback address") !=
          std::string::npos);
    // Names given restrict even a server bound to every address.
    const HostPolicy wide_listed = host_policy(bound_to("0.0.0.0", {"lab.example"}));
    CHECK(host_refusal(std::string("attacker.example"), wide_listed));
    CHECK_FALSE(host_refusal(std::string("lab.example"), wide_listed));
}

TEST_CASE("host_name: the name part of a Host value", "[site_guard]")
{
    CHECK(host_name("[::1]:8000") == "::1");
    CHECK(host_name("[::1]") == "::1");
    CHECK(host_name("Example.com:80") == "Example.com");
    CHECK(host_name("example.com") == "example.com");
}

TEST_CASE("cross_site_refusal: a state change from another site is refused, whatever it carries",
          "[site_guard]")
{
    const std::string host = "127.0.0.1:8000";
    CHECK(cross_site_refusal(post(host, "http://evil.example")));
    CHECK(cross_site_refusal(post(host, "http://127.0.0.1:9000"))); // another port
    CHECK(cross_site_refusal(post(host, "http://localhost:8000"))); // another name
    CHECK(cross_site_refusal(post(host, "null")));                  // a sandboxed page, file://
    CHECK(cross_site_refusal(post(std::nullopt, "http://127.0.0.1:8000")));
    CHECK(cross_site_refusal(post(host, std::nullopt, "cross-site")));
    CHECK(cross_site_refusal(post(host, std::nullopt, "same-site")));
    CHECK(cross_site_refusal(post(host, "http://127.0.0.1:8000", "cross-site")));
    const auto why = cross_site_refusal(post(host, "http://evil.example"));
    REQUIRE(why);
    CHECK(why->find("http://evil.example") != std::string::npos);

    Request put = post(host, "http://evil.example");
    put.method = "DELETE";
    CHECK(cross_site_refusal(put));
}

TEST_CASE("cross_site_refusal: the server's own page, curl, and reads pass", "[site_guard]")
{
    CHECK_FALSE(cross_site_refusal(post("127.0.0.1:8000", "http://127.0.0.1:8000")));
    CHECK_FALSE(cross_site_refusal(post("127.0.0.1:8000", "http://127.0.0.1:8000", "same-origin")));
    CHECK_FALSE(cross_site_refusal(post("LOCALHOST", "http://localhost:80")));
    CHECK_FALSE(cross_site_refusal(post("[::1]:8000", "http://[::1]:8000")));
    CHECK_FALSE(cross_site_refusal(post("127.0.0.1:8000", std::nullopt)));         // curl
    CHECK_FALSE(cross_site_refusal(post("127.0.0.1:8000", std::nullopt, "none"))); // typed URL
    Request read = post("127.0.0.1:8000", "http://evil.example", "cross-site");
    read.method = "GET";
    CHECK_FALSE(cross_site_refusal(read)); // the browser does not let that page read the answer
}

TEST_CASE("page_may_carry_token: in loopback mode, to a loopback peer that named a loopback host",
          "[site_guard]")
{
    Options loopback = bound_to("127.0.0.1", {"class.example"});
    Request page{"GET", "/dashboard", ""};
    page.host = "127.0.0.1:8000";
    CHECK(page_may_carry_token(page, loopback));
    page.host = "class.example:8000";
    CHECK(page_may_carry_token(page, loopback));
    page.host = "attacker.example:8000"; // a rebinding page, even if no Host check stopped it
    CHECK_FALSE(page_may_carry_token(page, loopback));
    page.host = std::nullopt;
    CHECK_FALSE(page_may_carry_token(page, loopback));
    page.host = "localhost:8000";
    page.from_loopback = false;
    CHECK_FALSE(page_may_carry_token(page, loopback));
    page.from_loopback = true;
    for (auto mode : {DashboardControls::token, DashboardControls::off}) {
        Options other = loopback;
        other.dashboard_controls = mode;
        CHECK_FALSE(page_may_carry_token(page, other));
    }
    Options any = bound_to("127.0.0.1", {"*"});
    page.host = "attacker.example";
    CHECK_FALSE(page_may_carry_token(page, any)); // * answers any name, it trusts none
}

TEST_CASE("mask_tokens: every token= value becomes ***, nothing else changes", "[site_guard]")
{
    CHECK(mask_tokens("/dashboard?token=abc") == "/dashboard?token=***");
    CHECK(mask_tokens("/dashboard?x=1&token=abc&y=2") == "/dashboard?x=1&token=***&y=2");
    CHECK(mask_tokens("http://h/dashboard?token=abc#top") == "http://h/dashboard?token=***#top");
    CHECK(mask_tokens("/a?token=1&token=2") == "/a?token=***&token=***");
    CHECK(mask_tokens("/a?mytoken=1") == "/a?mytoken=1");
    CHECK(mask_tokens("/counter/token=x") == "/counter/token=x");
    CHECK(mask_tokens("") == "");
}
