// GET /dashboard and its assets, through the API's router: no sockets, no browser.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <regex>

#include <fmt/format.h>

#include "app/api.h"
#include "app/api_dashboard.h"
#include "app/dashboard/assets.h"
#include "harness/temp_dir.h"

using namespace forklock;

namespace {

struct Fixture {
    harness::TempDir dir{"api_dashboard"};
    LockTable table{LockTableOptions{LockMode::thread, 8, true, {}, {}, false, {}}};
    CounterStore store{dir.path()};
    Api api{ApiContext{&table, &store, nullptr, ::getpid()}};

    Response get(const std::string& path, const std::string& method = "GET") const
    {
        return api.handle(Request{method, path, ""});
    }
};

std::string header(const Response& r, std::string_view name)
{
    for (const auto& [n, v] : r.headers)
        if (n == name) return v;
    return "";
}

} // namespace

TEST_CASE("Dashboard: /dashboard and /dashboard/ serve the page as HTML, revalidated",
          "[api_dashboard]")
{
    Fixture f;
    for (const char* path : {"/dashboard", "/dashboard/"}) {
        Response r = f.get(path);
        CHECK(r.status == 200);
        CHECK(r.content_type == "text/html; charset=utf-8");
        CHECK(header(r, "Cache-Control") == "no-cache");
        CHECK(r.body.find("<script type=\"module\" src=\"/dashboard/dashboard.js\">") !=
              std::string::npos);
    }
}

TEST_CASE("Dashboard: every module the page imports is served as JavaScript", "[api_dashboard]")
{
    Fixture f;
    const std::regex import_re(R"(from '\./([a-z_]+\.js)')");
    std::vector<std::string> modules{"dashboard.js"};
    for (std::size_t i = 0; i < modules.size(); ++i) {
        Response r = f.get("/dashboard/" + modules[i]);
        INFO(modules[i]);
        REQUIRE(r.status == 200);
        CHECK(r.content_type == "text/javascript; charset=utf-8");
        for (std::sregex_iterator m(r.body.begin(), r.body.end(), import_re), end; m != end; ++m)
            if (std::find(modules.begin(), modules.end(), (*m)[1]) == modules.end())
                modules.push_back((*m)[1]);
    }
    CHECK(modules.size() >= 3); // dashboard.js, lanes.js, controls.js
    Response css = f.get("/dashboard/dashboard.css");
    CHECK(css.status == 200);
    CHECK(css.content_type == "text/css; charset=utf-8");
}

TEST_CASE("Dashboard: the embedded assets are the files, whole", "[api_dashboard]")
{
    REQUIRE(kDashboardAssets.size() >= 5);
    for (const auto& asset : kDashboardAssets) {
        INFO(asset.name);
        CHECK(asset.body.size() > 100);
        CHECK(asset.body.find('\0') == std::string_view::npos);
    }
    Fixture f;
    CHECK(f.get("/dashboard").body.ends_with("</html>\n"));
}

TEST_CASE("Dashboard: the page's mode select offers every mode of the mode table",
          "[api_dashboard]")
{
    Fixture f;
    const std::string page = f.get("/dashboard").body;
    for (const ModeFacts& m : lock_modes())
        CHECK(page.find(fmt::format("<option>{}</option>", m.name)) != std::string::npos);
    CHECK(page.find("<!-- lock modes -->") == std::string::npos);
}

TEST_CASE("Dashboard: an unknown asset is a 404 and a POST a 405 with Allow", "[api_dashboard]")
{
    Fixture f;
    CHECK(f.get("/dashboard/nope.js").status == 404);
    CHECK(f.get("/dashboard/../api.cpp").status == 404);
    CHECK(f.get("/dashboardx").status == 404);
    Response post = f.get("/dashboard", "POST");
    CHECK(post.status == 405);
    CHECK(header(post, "Allow") == "GET, HEAD");
    CHECK(f.get("/dashboard/lanes.js", "HEAD").status == 200);
}

TEST_CASE("Dashboard: the index page lists it", "[api_dashboard]")
{
    Fixture f;
    Response r = f.get("/");
    CHECK(r.body.find("GET /dashboard ") != std::string::npos);
}

TEST_CASE("Dashboard: a token given goes into the page's meta tag, escaped, and the page is not "
          "stored",
          "[api_dashboard]")
{
    const Request page{"GET", "/dashboard", ""};
    const Response with = dashboard(page, R"(a"b<c&)");
    CHECK(with.body.find(R"(<meta name="forklock-token" content="a&quot;b&lt;c&amp;">)") !=
          std::string::npos);
    CHECK(header(with, "Cache-Control") == "no-store");
    const Response without = dashboard(page);
    CHECK(without.body.find(R"(<meta name="forklock-token" content="">)") != std::string::npos);
    CHECK(header(without, "Cache-Control") == "no-cache");
    for (const Response* r : {&with, &without}) {
        CHECK(header(*r, "X-Frame-Options") == "DENY");
        CHECK(header(*r, "Referrer-Policy") == "no-referrer");
    }
    // Only the page: a script never carries it.
    CHECK(dashboard({"GET", "/dashboard/dashboard.js", ""}, "s3cret").body.find("s3cret") ==
          std::string::npos);
}
