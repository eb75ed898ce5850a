// Unit tests for router: route() is the one decision for every request, tested here without a
// socket over a table of requests (every route, method, HEAD, upgrade, Origin, ticket source,
// redirect); and its stats fast path: a fresh copy published by the session service answers
// GET/HEAD ?action=stats on the caller's thread, with exactly the answer the service gives, and
// stops doing so as soon as the copy could be wrong.  Time is a hand-moved clock; the service's
// io_context is polled by hand, so "answered before polling" means "answered without the strand".
#include "voice_broker/router.hpp"

#include "temp_dir.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/session_service.hpp"
#include "voice_broker/static_files.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

struct answer {
    bool on_the_spot = false;  // respond() ran before the service's strand did anything
    http_response res;
    json body() const { return json::parse(res.body_view()); }
};

class router_stats_test : public ::testing::Test {
protected:
    boost::asio::io_context ioc;
    config settings;
    metrics stats;
    // Far ahead of the steady clock, so that the service's timer never fires during a test.
    const steady_time start = std::chrono::steady_clock::now() + std::chrono::hours{1000};
    steady_time now = start;
    std::shared_ptr<session_service> service;
    std::optional<router> routes;

    void SetUp() override {
        settings.session.max_concurrent_users = 1;
        service_options options;
        options.clock = [this] { return now; };
        service = session_service::create(ioc, settings, stats, nullptr, std::move(options));
        routes.emplace(routing_settings{}, service, stats, nullptr);
    }

    void TearDown() override {
        bool done = false;
        service->shutdown(true, [&done] { done = true; });
        run_until([&done] { return done; });
        run_pending();  // the cancelled timer's handler holds the service
        routes.reset();
        service.reset();
    }

    void run_pending() {
        ioc.restart();
        ioc.poll();
    }

    template <class Done>
    void run_until(Done done) {
        for (int i = 0; i < 100 && !done(); ++i) {
            ioc.restart();
            ioc.poll();
        }
        ASSERT_TRUE(done()) << "the service never answered";
    }

    static http_request request(std::string method, std::string target, std::vector<std::pair<std::string, std::string>> headers = {}) {
        http_request req;
        req.method = std::move(method);
        req.target = std::move(target);
        const auto q = req.target.find('?');
        req.path = req.target.substr(0, q);
        if (q != std::string::npos) req.query = req.target.substr(q + 1);
        req.headers = std::move(headers);
        req.client_address = "203.0.113.7";
        return req;
    }

    // What a session does with the decision: answer it, or hand the request to the service.
    answer through_router(http_request req) {
        std::optional<http_response> got;
        auto decision = routes->route(req);
        if (decision.what == route_decision::kind::respond) got = std::move(decision.response);
        else service->handle(std::move(req), responder([&got](http_response res) { got = std::move(res); }));
        answer out;
        out.on_the_spot = got.has_value();
        run_until([&got] { return got.has_value(); });
        out.res = std::move(*got);
        if (decision.head_only) out.res.omit_body = true;
        return out;
    }
    answer through_router(std::string method, std::string target) { return through_router(request(method, target)); }

    // The slow path itself: straight to the service's strand.
    http_response from_service(std::string method, std::string target) {
        std::optional<http_response> got;
        const bool head = method == "HEAD";
        service->handle(request(method, target), responder([&got](http_response res) { got = std::move(res); }));
        run_until([&got] { return got.has_value(); });
        if (head) got->omit_body = true;
        return std::move(*got);
    }

    std::string join() {
        const auto a = through_router("POST", "/api/session?action=join");
        EXPECT_EQ(a.res.status, 200u);
        return a.body()["ticket"].get<std::string>();
    }
};

void expect_same_answer(const http_response& a, const http_response& b) {
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.headers, b.headers);
    EXPECT_EQ(a.body_view(), b.body_view());
    EXPECT_EQ(a.omit_body, b.omit_body);
}

TEST_F(router_stats_test, a_fresh_copy_answers_on_the_spot_with_the_services_very_answer) {
    join();
    join();
    now += 250ms;
    const auto first = through_router("GET", "/api/session?action=stats");
    EXPECT_FALSE(first.on_the_spot) << "nothing published yet: the service answers";
    EXPECT_EQ(first.res.status, 200u);
    EXPECT_EQ(first.body()["activeSessions"], 1);
    EXPECT_EQ(first.body()["queueLength"], 1);

    const auto second = through_router("GET", "/api/session?action=stats");
    EXPECT_TRUE(second.on_the_spot);
    expect_same_answer(second.res, first.res);
    expect_same_answer(second.res, from_service("GET", "/api/session?action=stats"));

    // The answer reads nothing else from the request: these are the same question.
    for (const auto* target : {"/api/session?action=stats&verbose=1", "/api/session?x=1&action=st%61ts"}) {
        const auto same = through_router("GET", target);
        EXPECT_TRUE(same.on_the_spot) << target;
        expect_same_answer(same.res, first.res);
    }
    const auto head = through_router("HEAD", "/api/session?action=stats");
    EXPECT_TRUE(head.on_the_spot);
    expect_same_answer(head.res, from_service("HEAD", "/api/session?action=stats"));
    // Headers, cookies or an admin token change nothing about stats, so they do not matter either.
    const auto with_headers = through_router(
        request("GET", "/api/session?action=stats", {{"x-admin-token", "guess"}, {"cookie", "vb_ticket=abc"}}));
    EXPECT_TRUE(with_headers.on_the_spot);
    expect_same_answer(with_headers.res, first.res);
}

TEST_F(router_stats_test, the_copy_serves_until_the_next_whole_second_of_uptime) {
    now = start + 5s + 200ms;
    EXPECT_FALSE(through_router("GET", "/api/session?action=stats").on_the_spot);
    now = start + 6s - 1ns;
    const auto late = through_router("GET", "/api/session?action=stats");
    EXPECT_TRUE(late.on_the_spot);
    EXPECT_EQ(late.body()["uptimeSeconds"], 5);
    {
        SCOPED_TRACE("uptime is exact all along");
        expect_same_answer(late.res, from_service("GET", "/api/session?action=stats"));
    }
    now = start + 6s;
    const auto next = through_router("GET", "/api/session?action=stats");
    EXPECT_FALSE(next.on_the_spot) << "uptimeSeconds has changed";
    EXPECT_EQ(next.body()["uptimeSeconds"], 6);
    EXPECT_TRUE(through_router("GET", "/api/session?action=stats").on_the_spot) << "and the new copy serves again";
}

TEST_F(router_stats_test, every_change_that_stats_shows_withdraws_the_copy) {
    auto stats_now = [this] { return through_router("GET", "/api/session?action=stats"); };
    stats_now();
    ASSERT_TRUE(stats_now().on_the_spot);

    const auto holder = join();
    auto a = stats_now();
    EXPECT_FALSE(a.on_the_spot);
    EXPECT_EQ(a.body()["activeSessions"], 1);
    EXPECT_EQ(a.body()["today"]["sessionsStarted"], 1);

    const auto waiting = join();
    a = stats_now();
    EXPECT_FALSE(a.on_the_spot);
    EXPECT_EQ(a.body()["queueLength"], 1);

    // A sign of life changes nothing stats shows: the copy stays.
    EXPECT_EQ(through_router(request("POST", "/api/session?action=heartbeat", {{"x-session-ticket", holder}})).res.status, 200u);
    EXPECT_TRUE(stats_now().on_the_spot);

    // The holder leaves and the one waiting takes the slot.
    EXPECT_EQ(through_router(request("POST", "/api/session?action=leave", {{"x-session-ticket", holder}})).res.status, 200u);
    a = stats_now();
    EXPECT_FALSE(a.on_the_spot);
    EXPECT_EQ(a.body()["activeSessions"], 1);
    EXPECT_EQ(a.body()["queueLength"], 0);
    EXPECT_EQ(a.body()["today"]["sessionsStarted"], 2);
    EXPECT_EQ(a.body()["today"]["sessionsCompleted"], 1);

    // A reload (SIGHUP) changes the limits shown, though it moves nobody.
    EXPECT_TRUE(stats_now().on_the_spot);
    auto fresh = settings;
    fresh.session.max_concurrent_users = 4;
    service->reload(fresh);
    run_pending();
    a = stats_now();
    EXPECT_FALSE(a.on_the_spot);
    EXPECT_EQ(a.body()["maxConcurrentUsers"], 4);
    (void)waiting;
}

TEST_F(router_stats_test, the_copy_never_outlives_the_brokers_next_deadline) {
    now = start + 500ms;
    join();  // silent without a live channel: abandoned at +30.5 s
    now = start + 30s + 200ms;
    EXPECT_FALSE(through_router("GET", "/api/session?action=stats").on_the_spot);
    now = start + 30s + 499ms;
    EXPECT_TRUE(through_router("GET", "/api/session?action=stats").on_the_spot);
    now = start + 30s + 500ms;
    EXPECT_FALSE(through_router("GET", "/api/session?action=stats").on_the_spot)
        << "the holder may be gone at this instant: only the service can tell";
}

TEST_F(router_stats_test, other_requests_always_go_to_the_service) {
    through_router("GET", "/api/session?action=stats");
    ASSERT_TRUE(through_router("GET", "/api/session?action=stats").on_the_spot);
    const auto post = through_router("POST", "/api/session?action=stats");
    EXPECT_FALSE(post.on_the_spot);
    EXPECT_EQ(post.res.status, 405u);
    const auto status = through_router("GET", "/api/session?action=status");
    EXPECT_FALSE(status.on_the_spot);
    EXPECT_EQ(status.res.status, 400u) << "no ticket";
    const auto other_action_first = through_router("GET", "/api/session?action=status&action=stats");
    EXPECT_FALSE(other_action_first.on_the_spot) << "the first action counts";
}

// ---- the decision table --------------------------------------------------------------------------

class router_decision_test : public ::testing::Test {
protected:
    boost::asio::io_context ioc;
    metrics stats;
    testing::temp_dir site;
    std::shared_ptr<session_service> service;
    std::optional<router> routes;

    void SetUp() override {
        site.write("index.html", "<!doctype html><title>voice</title>");
        site.write("app.js", "console.log('hi');");
        config settings;
        service = session_service::create(ioc, settings, stats, nullptr);
        routing_settings rs;
        rs.trusted_proxies = {*ip_network::parse("127.0.0.1")};
        rs.public_port = 8443;
        routes.emplace(rs, service, stats, static_files::load(site.path().string()));
    }

    void TearDown() override {
        routes.reset();
        service.reset();
    }
};

struct route_case {
    const char* name;
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;
    bool upgrade = false;
    bool plain_on_tls_port = false;
    std::string peer = "203.0.113.7";
    // expected:
    route_decision::kind what = route_decision::kind::respond;
    unsigned status = 0;  // respond only
    const char* code = "";  // respond with an error: its code
    bool close = false;
    bool head_only = false;
    std::string ticket = {};  // live_channel only
};

TEST_F(router_decision_test, every_route_method_upgrade_origin_ticket_source_and_redirect) {
    using k = route_decision::kind;
    const std::vector<route_case> cases = {
        {"page", "GET", "/", {}, false, false, "203.0.113.7", k::respond, 200},
        {"page by name", "GET", "/app.js", {}, false, false, "203.0.113.7", k::respond, 200},
        {"HEAD of the page", "HEAD", "/", {}, false, false, "203.0.113.7", k::respond, 200, "", false, true},
        {"no such file", "GET", "/nope.css", {}, false, false, "203.0.113.7", k::respond, 404, "not_found"},
        {"traversal", "GET", "/a/../app.js", {}, false, false, "203.0.113.7", k::respond, 400, "bad_path"},
        {"POST to a file", "POST", "/", {}, false, false, "203.0.113.7", k::respond, 405, "method_not_allowed"},
        {"health", "GET", "/api/health", {}, false, false, "203.0.113.7", k::respond, 200},
        {"HEAD health", "HEAD", "/api/health", {}, false, false, "203.0.113.7", k::respond, 200, "", false, true},
        {"POST health", "POST", "/api/health", {}, false, false, "203.0.113.7", k::respond, 405, "method_not_allowed"},
        {"metrics", "GET", "/metrics", {}, false, false, "203.0.113.7", k::respond, 200},
        {"DELETE metrics", "DELETE", "/metrics", {}, false, false, "203.0.113.7", k::respond, 405, "method_not_allowed"},
        {"session API", "POST", "/api/session?action=join", {}, false, false, "203.0.113.7", k::session_api},
        {"stats without a fresh copy", "GET", "/api/session?action=stats", {}, false, false, "203.0.113.7", k::session_api},
        {"HEAD of the session API", "HEAD", "/api/session?action=status", {}, false, false, "203.0.113.7", k::session_api, 0,
         "", false, true},
        {"unknown API", "GET", "/api/nothing", {}, false, false, "203.0.113.7", k::respond, 404, "not_found"},
        {"bare /api", "GET", "/api", {}, false, false, "203.0.113.7", k::respond, 404, "not_found"},
        {"live channel without upgrade", "GET", "/api/session/ws", {}, false, false, "203.0.113.7", k::respond, 426,
         "upgrade_required"},
        {"not an origin-form target", "GET", "*", {}, false, false, "203.0.113.7", k::respond, 400, "bad_target", true},
        {"plain HTTP on the TLS port", "GET", "/x?y=1", {{"host", "example.org:8443"}}, false, true, "203.0.113.7", k::respond,
         308, "use_https", true},
        {"upgrade elsewhere", "GET", "/api/session", {}, true, false, "203.0.113.7", k::respond, 404, "not_found", true},
        {"upgrade without a ticket", "GET", "/api/session/ws", {}, true, false, "203.0.113.7", k::respond, 400,
         "missing_ticket", true},
        {"ticket in the query", "GET", "/api/session/ws?ticket=Q", {}, true, false, "203.0.113.7", k::live_channel, 0, "",
         false, false, "Q"},
        {"ticket in the cookie beats the query", "GET", "/api/session/ws?ticket=Q", {{"cookie", "vb_ticket=C"}}, true, false,
         "203.0.113.7", k::live_channel, 0, "", false, false, "C"},
        {"ticket in the header beats both", "GET", "/api/session/ws?ticket=Q",
         {{"cookie", "vb_ticket=C"}, {"x-session-ticket", "H"}}, true, false, "203.0.113.7", k::live_channel, 0, "", false,
         false, "H"},
        {"same-origin page", "GET", "/api/session/ws?ticket=Q", {{"host", "voice.example"}, {"origin", "https://voice.example"}},
         true, false, "203.0.113.7", k::live_channel, 0, "", false, false, "Q"},
        {"cross-site page", "GET", "/api/session/ws?ticket=Q", {{"host", "voice.example"}, {"origin", "https://evil.example"}},
         true, false, "203.0.113.7", k::respond, 403, "bad_origin", true},
        {"origin of the proxy's public host", "GET", "/api/session/ws?ticket=Q",
         {{"host", "127.0.0.1:3000"}, {"x-forwarded-host", "voice.example"}, {"origin", "https://voice.example"}}, true, false,
         "127.0.0.1", k::live_channel, 0, "", false, false, "Q"},
        {"X-Forwarded-Host from an untrusted peer", "GET", "/api/session/ws?ticket=Q",
         {{"host", "127.0.0.1:3000"}, {"x-forwarded-host", "voice.example"}, {"origin", "https://voice.example"}}, true, false,
         "203.0.113.7", k::respond, 403, "bad_origin", true},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        http_request req;
        req.method = c.method;
        req.target = c.target;
        const auto q = req.target.find('?');
        req.path = req.target.substr(0, q);
        if (q != std::string::npos) req.query = req.target.substr(q + 1);
        req.headers = c.headers;
        req.websocket_upgrade = c.upgrade;
        req.plain_on_tls_port = c.plain_on_tls_port;
        req.peer_address = c.peer;
        const auto d = routes->route(req);
        EXPECT_EQ(d.what, c.what);
        EXPECT_EQ(d.head_only, c.head_only);
        EXPECT_EQ(d.close, c.close);
        if (c.what == k::respond) {
            EXPECT_EQ(d.response.status, c.status);
            if (*c.code) {
                EXPECT_NE(d.response.body_view().find(std::string("\"code\":\"") + c.code + "\""), std::string_view::npos)
                    << d.response.body_view();
            }
        }
        if (c.what == k::live_channel) {
            EXPECT_EQ(d.ticket, c.ticket);
        }
        EXPECT_FALSE(req.request_id.empty()) << "every request gets an id";
    }
}

TEST_F(router_decision_test, the_redirect_keeps_the_host_name_and_target_and_names_the_public_port) {
    http_request req;
    req.method = "GET";
    req.target = "/page?x=1";
    req.path = "/page";
    req.query = "x=1";
    req.headers = {{"host", "voice.example:80"}};
    req.plain_on_tls_port = true;
    const auto d = routes->route(req);
    EXPECT_EQ(d.response.header("Location"), "https://voice.example:8443/page?x=1");
}

TEST_F(router_decision_test, the_client_is_the_forwarded_address_only_behind_a_trusted_proxy) {
    http_request req;
    req.method = "GET";
    req.target = req.path = "/api/health";
    req.headers = {{"x-forwarded-for", "198.51.100.9, 127.0.0.1"}, {"x-forwarded-proto", "https"}, {"x-request-id", "abc-1"}};
    req.peer_address = "127.0.0.1";
    routes->route(req);
    EXPECT_EQ(req.client_address, "198.51.100.9");
    EXPECT_TRUE(req.secure);
    EXPECT_EQ(req.request_id, "abc-1") << "a plain client id is kept";

    req.peer_address = "203.0.113.7";
    req.headers[2].second = "bad id with spaces";
    routes->route(req);
    EXPECT_EQ(req.client_address, "203.0.113.7") << "an untrusted peer's X-Forwarded-For is ignored";
    EXPECT_FALSE(req.secure);
    EXPECT_EQ(req.request_id.size(), 16u) << "a bad client id is replaced";
}

TEST(router_read_failures, each_has_its_status) {
    EXPECT_EQ(router::read_failure_answer(read_failure::body_too_large).status, 413u);
    EXPECT_EQ(router::read_failure_answer(read_failure::headers_too_large).status, 431u);
    EXPECT_EQ(router::read_failure_answer(read_failure::malformed).status, 400u);
}

}  // namespace
}  // namespace voice_broker
