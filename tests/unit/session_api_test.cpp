// Unit tests for the /api/session?action=... endpoints, through the session service over a memory
// store, as a page would see them: statuses, headers and JSON bodies as docs/API.md states them.
// Time is a hand-moved clock; the service's io_context is polled by hand; the upstream is a
// stand-in that records what it was asked.
#include "voice_broker/session_api.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/realtime_upstream.hpp"
#include "voice_broker/session_service.hpp"
#include "memory_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

const steady_time t0 = steady_time{} + std::chrono::hours{1000};
// 2026-11-24T10:00:00Z at t0.
const auto wall_t0 = std::chrono::system_clock::time_point{} + std::chrono::seconds{1795514400};

struct request_spec {
    request_spec(std::string m, std::string q, std::vector<std::pair<std::string, std::string>> h = {}, std::string b = {})
        : method(std::move(m)), query(std::move(q)), headers(std::move(h)), body(std::move(b)) {}

    std::string method;
    std::string query;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string address = "203.0.113.7";
    bool secure = false;
};

// Records what the service asks of OpenAI and answers at once.
class recording_upstream final : public realtime_upstream {
public:
    std::vector<std::chrono::seconds> minted_ttls;
    std::vector<std::string> offers;
    std::vector<std::string> hangups;

    void mint_token(std::chrono::seconds ttl, std::function<void(http_response)> done) override {
        minted_ttls.push_back(ttl);
        done(json_response(200, {{"value", "ek_test"}}));
    }
    void relay_offer(std::string sdp_offer, std::function<void(call_result)> done) override {
        offers.push_back(std::move(sdp_offer));
        http_response res;
        res.status = 201;
        res.body = "v=0\r\n";
        done({std::move(res), "rtc_relayed_" + std::to_string(offers.size())});
    }
    void hang_up(std::string call_id) override { hangups.push_back(std::move(call_id)); }
};

class session_api_test : public ::testing::Test {
protected:
    boost::asio::io_context ioc;
    config settings;
    metrics counters;
    steady_time now = t0;
    std::shared_ptr<recording_upstream> upstream = std::make_shared<recording_upstream>();
    std::shared_ptr<session_service> service;
    memory_store* store = nullptr;  // the service's; for its deadlines (the clock is moved by hand)
    int issued = 0;
    std::vector<std::string> issued_tickets;

    void SetUp() override { restart(); }
    void TearDown() override { stop(); }

    // Processes the deadlines up to `now`, as the store's timer would.
    void run_deadlines() {
        boost::asio::post(ioc, [this] { store->run_due_deadlines(); });
        ioc.restart();
        ioc.poll();
    }

    // A service built from the current settings, started 100 s before t0.
    void restart() {
        stop();
        upstream = std::make_shared<recording_upstream>();
        service_options options;
        options.clock = [this] { return now; };
        options.wall_clock = wall_clock_mapping{t0, wall_t0};
        options.new_ticket = [this] {
            issued_tickets.push_back("Tk" + std::to_string(++issued) + "_abcdefghijklmnopq");
            return issued_tickets.back();
        };
        options.make_store = [this](const boost::asio::any_io_executor& strand, std::function<steady_time()> clock) {
            auto made = make_memory_store(strand, {settings.session, {}, "test-instance", std::move(clock), {}});
            store = made.get();
            return std::unique_ptr<session_store>(std::move(made));
        };
        const auto saved = now;
        now = t0 - 100s;
        service = session_service::create(ioc, settings, counters, upstream, std::move(options));
        now = saved;
    }

    void stop() {
        if (!service) return;
        service->shutdown(true, [] {});
        ioc.restart();
        ioc.poll();
        service.reset();
    }

    http_response respond(request_spec spec) {
        http_request req;
        req.method = spec.method;
        req.path = "/api/session";
        req.query = spec.query;
        req.target = req.path + (spec.query.empty() ? "" : "?" + spec.query);
        req.headers = std::move(spec.headers);
        req.body = std::move(spec.body);
        req.client_address = spec.address;
        req.secure = spec.secure;
        std::optional<http_response> got;
        service->handle(std::move(req), responder([&got](http_response res) { got = std::move(res); }));
        for (int i = 0; i < 100 && !got; ++i) {
            ioc.restart();
            ioc.poll();
        }
        EXPECT_TRUE(got) << "the service never answered";
        if (!got) return {};
        if (got->shared_body) got->body = *got->shared_body;  // a published stats copy
        return std::move(*got);
    }

    // POST ?action=join, returning the ticket.
    std::string join(std::vector<std::pair<std::string, std::string>> headers = {}) {
        const auto res = respond({"POST", "action=join", std::move(headers)});
        EXPECT_EQ(res.status, 200u) << res.body;
        return json::parse(res.body).value("ticket", "");
    }

    json stats() { return json::parse(respond({"GET", "action=stats"}).body); }

    static std::pair<std::string, std::string> ticket_header(const std::string& t) { return {"x-session-ticket", t}; }
};

json body_of(const http_response& res) { return json::parse(res.body); }

void expect_error(const http_response& res, unsigned status, const std::string& code) {
    EXPECT_EQ(res.status, status) << res.body;
    const auto body = json::parse(res.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << res.body;
    ASSERT_TRUE(body.contains("error")) << res.body;
    EXPECT_EQ(body["error"].value("code", ""), code) << res.body;
    EXPECT_FALSE(body["error"].value("message", "").empty()) << res.body;
    EXPECT_EQ(body.size(), 1u) << "only {\"error\":{...}}: " << res.body;
    EXPECT_EQ(res.header("Content-Type"), "application/json");
}

// --- join -------------------------------------------------------------------------------------

TEST_F(session_api_test, join_admits_and_answers_the_status_document_with_a_cookie) {
    const auto res = respond({"POST", "action=join"});
    ASSERT_EQ(res.status, 200u) << res.body;
    EXPECT_EQ(res.header("Content-Type"), "application/json");
    EXPECT_EQ(res.header("Cache-Control"), "no-store");
    const auto body = body_of(res);
    EXPECT_EQ(body["ticket"], issued_tickets.at(0));
    EXPECT_EQ(body["state"], "active");
    EXPECT_EQ(body["queueLength"], 0);
    EXPECT_EQ(body["remainingSeconds"], 300);
    EXPECT_EQ(body["etaSeconds"], 0);
    EXPECT_EQ(body["confirmed"], true);
    EXPECT_EQ(body["startedAt"], "2026-11-24T10:00:00.000Z");
    EXPECT_EQ(body["expiresAt"], "2026-11-24T10:05:00.000Z");
    EXPECT_EQ(body["limits"], json::parse(R"({"maxConcurrentUsers":1,"sessionSeconds":300,"warningSeconds":[180,120,60]})"));

    const auto cookie = std::string(res.header("Set-Cookie"));
    EXPECT_EQ(cookie.rfind("vb_ticket=" + issued_tickets.at(0) + ";", 0), 0u) << cookie;
    EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("Path=/"), std::string::npos) << cookie;
    EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "plain http: " << cookie;
}

TEST_F(session_api_test, the_cookie_is_secure_over_https) {
    request_spec spec{"POST", "action=join"};
    spec.secure = true;
    const auto res = respond(spec);
    EXPECT_NE(std::string(res.header("Set-Cookie")).find("; Secure"), std::string::npos) << res.header("Set-Cookie");
}

TEST_F(session_api_test, the_next_visitor_waits_with_a_position_and_an_eta) {
    join();
    const auto res = respond({"POST", "action=join"});
    const auto body = body_of(res);
    EXPECT_EQ(body["state"], "queued");
    EXPECT_EQ(body["position"], 1);
    EXPECT_EQ(body["queueLength"], 1);
    EXPECT_EQ(body["etaSeconds"], 300);
    EXPECT_EQ(body["remainingSeconds"], 0);
    EXPECT_FALSE(body.contains("startedAt"));
}

TEST_F(session_api_test, joining_again_with_the_cookie_or_header_keeps_the_same_place) {
    const auto first = join();
    const auto second = join();
    for (const auto& header : std::vector<std::pair<std::string, std::string>>{
             {"cookie", "theme=dark; vb_ticket=" + second}, {"x-session-ticket", second}}) {
        const auto res = respond({"POST", "action=join", {header}});
        EXPECT_EQ(body_of(res)["ticket"], second);
        EXPECT_EQ(body_of(res)["position"], 1);
    }
    EXPECT_EQ(stats()["queueLength"], 1) << "never a second place";
    EXPECT_EQ(stats()["activeSessions"], 1);
    EXPECT_NE(first, second);
}

TEST_F(session_api_test, a_full_queue_answers_503_with_retry_after) {
    settings.session.max_queue_length = 1;
    restart();
    join();
    join();
    const auto res = respond({"POST", "action=join"});
    expect_error(res, 503, "queue_full");
    EXPECT_EQ(res.header("Retry-After"), "60");
    EXPECT_TRUE(res.header("Set-Cookie").empty());
}

TEST_F(session_api_test, retry_after_follows_a_short_session_but_never_below_five_seconds) {
    settings.session.max_queue_length = 0;
    settings.session.session_duration = 3s;
    restart();
    join();
    EXPECT_EQ(respond({"POST", "action=join"}).header("Retry-After"), "5");
    settings.session.session_duration = 30s;
    restart();
    join();
    EXPECT_EQ(respond({"POST", "action=join"}).header("Retry-After"), "30");
}

TEST_F(session_api_test, no_joins_while_shutting_down) {
    service->shutdown(true, [] {});
    const auto res = respond({"POST", "action=join"});
    expect_error(res, 503, "shutting_down");
    EXPECT_EQ(res.header("Retry-After"), "5");
    EXPECT_EQ(stats()["activeSessions"], 0);
}

// --- status, heartbeat, leave -------------------------------------------------------------------

TEST_F(session_api_test, status_by_header_or_cookie) {
    const auto t = join();
    now += 100s;
    const auto by_header = respond({"GET", "action=status", {ticket_header(t)}});
    EXPECT_EQ(by_header.status, 200u);
    EXPECT_EQ(body_of(by_header)["remainingSeconds"], 200);
    const auto by_cookie = respond({"HEAD", "action=status", {{"cookie", "vb_ticket=" + t}}});
    EXPECT_EQ(body_of(by_cookie)["ticket"], t);
}

TEST_F(session_api_test, the_header_wins_over_the_cookie) {
    const auto a = join();
    const auto b = join();
    const auto res = respond({"GET", "action=status", {{"cookie", "vb_ticket=" + a}, ticket_header(b)}});
    EXPECT_EQ(body_of(res)["ticket"], b);
}

TEST_F(session_api_test, status_without_a_ticket_or_with_an_unknown_one) {
    expect_error(respond({"GET", "action=status"}), 400, "missing_ticket");
    expect_error(respond({"GET", "action=status", {{"cookie", "vb_ticket="}}}), 400, "missing_ticket");
    expect_error(respond({"GET", "action=status", {ticket_header("no-such-ticket")}}), 404, "unknown_ticket");
}

TEST_F(session_api_test, heartbeat_keeps_a_queued_visitor_without_a_websocket) {
    const auto holder = join();
    const auto t = join();
    now += 25s;
    EXPECT_EQ(respond({"POST", "action=heartbeat", {ticket_header(holder)}}).status, 200u);
    EXPECT_EQ(respond({"POST", "action=heartbeat", {ticket_header(t)}}).status, 200u);
    now = t0 + 40s;  // the holder's and the waiter's heartbeat timeouts would have passed without it
    run_deadlines();
    EXPECT_EQ(body_of(respond({"GET", "action=status", {ticket_header(t)}}))["state"], "queued");
    expect_error(respond({"POST", "action=heartbeat"}), 400, "missing_ticket");
    expect_error(respond({"POST", "action=heartbeat", {ticket_header("nope")}}), 404, "unknown_ticket");
}

TEST_F(session_api_test, leave_ends_the_session_clears_the_cookie_and_frees_the_slot) {
    const auto a = join();
    const auto b = join();
    const auto res = respond({"POST", "action=leave", {ticket_header(a)}});
    EXPECT_EQ(res.status, 200u);
    EXPECT_EQ(body_of(res), json::parse(R"({"state":"ended","reason":"left"})"));
    const auto cookie = std::string(res.header("Set-Cookie"));
    EXPECT_EQ(cookie.rfind("vb_ticket=;", 0), 0u) << cookie;
    EXPECT_NE(cookie.find("Max-Age=0"), std::string::npos) << cookie;

    const auto after = body_of(respond({"GET", "action=status", {ticket_header(a)}}));
    EXPECT_EQ(after["state"], "ended");
    EXPECT_EQ(after["reason"], "left");
    EXPECT_EQ(body_of(respond({"GET", "action=status", {ticket_header(b)}}))["state"], "active");

    EXPECT_EQ(body_of(respond({"POST", "action=leave", {ticket_header(a)}}))["reason"], "left") << "leaving twice";
    expect_error(respond({"POST", "action=leave", {ticket_header("nope")}}), 404, "unknown_ticket");
    expect_error(respond({"POST", "action=leave"}), 400, "missing_ticket");
}

TEST_F(session_api_test, leave_after_an_expiry_reports_the_real_reason) {
    const auto a = join();
    now = t0 + 300s;
    run_deadlines();
    now = t0 + 301s;
    EXPECT_EQ(body_of(respond({"POST", "action=leave", {ticket_header(a)}}))["reason"], "expired");
}

// --- stats ------------------------------------------------------------------------------------

TEST_F(session_api_test, stats_has_the_documented_shape_and_never_a_ticket) {
    settings.session.max_concurrent_users = 2;
    restart();
    join();
    now += 30s;
    join();
    join();
    now += 30s;
    const auto res = respond({"GET", "action=stats"});
    ASSERT_EQ(res.status, 200u);
    const auto body = body_of(res);
    EXPECT_EQ(body["activeSessions"], 2);
    EXPECT_EQ(body["maxConcurrentUsers"], 2);
    EXPECT_EQ(body["queueLength"], 1);
    EXPECT_EQ(body["maxQueueLength"], 50);
    EXPECT_EQ(body["sessionDurationMinutes"], 5.0);
    EXPECT_EQ(body["uptimeSeconds"], 160);
    ASSERT_EQ(body["sessions"].size(), 2u);
    for (const auto& s : body["sessions"]) {
        EXPECT_EQ(s.size(), 2u) << s.dump();
        EXPECT_TRUE(s["startedAt"].is_string());
        EXPECT_TRUE(s["remainingSeconds"].is_number_integer());
    }
    EXPECT_EQ(body["sessions"][0]["remainingSeconds"].get<int>() + body["sessions"][1]["remainingSeconds"].get<int>(),
              240 + 270);
    const auto& today = body["today"];
    EXPECT_EQ(today["sessionsStarted"], 2);
    EXPECT_EQ(today["sessionsCompleted"], 0);
    EXPECT_DOUBLE_EQ(today["minutesUsed"].get<double>(), 1.5) << "60 s + 30 s of running sessions";
    EXPECT_DOUBLE_EQ(today["estimatedCostUsd"].get<double>(), 0.09);
    std::vector<std::string> keys;
    for (const auto& [k, v] : body.items()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"activeSessions", "cost", "maxConcurrentUsers", "maxQueueLength", "queueLength",
                                              "sessionDurationMinutes", "sessions", "today", "uptimeSeconds"}));
    // The cost guard's section: real and estimated spend per period against the budget.
    const auto& cost = body["cost"];
    EXPECT_TRUE(cost["timeZone"].is_string());
    EXPECT_EQ(cost["budgetExhausted"], false);
    EXPECT_TRUE(cost["quotaPausedUntil"].is_null());
    for (const char* period : {"day", "month"}) {
        std::vector<std::string> period_keys;
        for (const auto& [k, v] : cost[period].items()) period_keys.push_back(k);
        EXPECT_EQ(period_keys, (std::vector<std::string>{"budgetUsd", "estimatedUsd", "period", "realUsd", "resetsAt",
                                                         "resetsAtLocal", "spentRatio", "tokens"}))
            << period;
    }

    ASSERT_EQ(issued_tickets.size(), 3u);
    for (const auto& t : issued_tickets) EXPECT_EQ(res.body.find(t), std::string::npos) << "stats reveals " << t;
    for (const auto& t : issued_tickets) EXPECT_EQ(res.body.find(t.substr(0, 6)), std::string::npos);
}

TEST_F(session_api_test, is_stats_request_names_exactly_the_requests_answered_with_stats) {
    join();
    join();
    const auto stats = respond({"GET", "action=stats"});
    ASSERT_EQ(stats.status, 200u);
    const std::vector<request_spec> cases = {
        {"GET", "action=stats"},
        {"HEAD", "action=stats"},
        {"GET", "x=1&action=stats"},
        {"GET", "action=st%61ts&verbose=1"},
        {"GET", "action=stats&action=join"},
        {"GET", "action=stats", {{"x-admin-token", "nope"}, {"cookie", "vb_ticket=x"}}},
        {"POST", "action=stats"},
        {"DELETE", "action=stats"},
        {"GET", "action=Stats"},
        {"GET", "action=stats2"},
        {"GET", "actions=stats"},
        {"GET", "action=join&action=stats"},
        {"GET", ""},
    };
    for (const auto& spec : cases) {
        http_request req;
        req.method = spec.method;
        req.path = "/api/session";
        req.query = spec.query;
        req.headers = spec.headers;
        const auto res = respond(spec);
        const bool answered_with_stats = res.status == 200 && res.headers == stats.headers && res.body == stats.body;
        EXPECT_EQ(is_stats_request(req), answered_with_stats) << spec.method << " ?" << spec.query;
    }
}

// --- forceEndAll --------------------------------------------------------------------------------

TEST_F(session_api_test, force_end_all_is_disabled_without_an_admin_token) {
    join();
    expect_error(respond({"POST", "action=forceEndAll", {{"x-admin-token", "anything"}}}), 403, "admin_disabled");
    EXPECT_EQ(stats()["activeSessions"], 1);
}

TEST_F(session_api_test, force_end_all_ends_every_session_and_the_queue_moves_up) {
    settings.admin_token = "the-admin-token-0123456789";
    settings.session.max_concurrent_users = 2;
    restart();
    const auto a = join();
    const auto b = join();
    const auto c = join();
    const auto res = respond({"POST", "action=forceEndAll", {{"x-admin-token", settings.admin_token}}});
    EXPECT_EQ(res.status, 200u);
    EXPECT_EQ(body_of(res), json::parse(R"({"success":true,"endedSessions":2})"));
    EXPECT_EQ(body_of(respond({"GET", "action=status", {ticket_header(a)}}))["reason"], "forced");
    EXPECT_EQ(body_of(respond({"GET", "action=status", {ticket_header(c)}}))["state"], "active");
    EXPECT_EQ(body_of(respond({"GET", "action=forceEndAll", {{"x-admin-token", settings.admin_token}}}))["endedSessions"], 1)
        << "GET works too";
    (void)b;
}

TEST_F(session_api_test, force_end_all_refuses_missing_or_wrong_tokens_and_throttles_guessing) {
    settings.admin_token = "the-admin-token-0123456789";
    restart();
    join();
    expect_error(respond({"POST", "action=forceEndAll"}), 401, "unauthorized");
    for (const char* wrong : {"the-admin-token-012345678", "the-admin-token-01234567890", "THE-ADMIN-TOKEN-0123456789",
                              "x"}) {
        expect_error(respond({"POST", "action=forceEndAll", {{"x-admin-token", wrong}}}), 401, "unauthorized");
    }
    // Five failures from this address: even the right token waits now.
    const auto throttled = respond({"POST", "action=forceEndAll", {{"x-admin-token", settings.admin_token}}});
    expect_error(throttled, 429, "too_many_attempts");
    EXPECT_EQ(throttled.header("Retry-After"), "60");
    EXPECT_EQ(stats()["activeSessions"], 1);
    EXPECT_TRUE(throttled.body.find(settings.admin_token) == std::string::npos);

    request_spec other{"POST", "action=forceEndAll", {{"x-admin-token", settings.admin_token}}};
    other.address = "198.51.100.9";
    EXPECT_EQ(respond(other).status, 200u) << "another address is not throttled";

    now += 30s;
    EXPECT_EQ(respond({"POST", "action=forceEndAll", {{"x-admin-token", settings.admin_token}}}).header("Retry-After"), "30");
    now += 30s;
    EXPECT_EQ(respond({"POST", "action=forceEndAll", {{"x-admin-token", settings.admin_token}}}).status, 200u)
        << "the window has passed";
}

// --- token, call, connect -------------------------------------------------------------------------

TEST_F(session_api_test, token_needs_an_api_key) {
    const auto t = join();
    expect_error(respond({"POST", "action=token", {ticket_header(t)}}), 503, "not_configured");
    EXPECT_TRUE(upstream->minted_ttls.empty());
    const auto res = respond({"POST", "action=token", {ticket_header(t)}});
    EXPECT_NE(json::parse(res.body)["error"]["message"].get<std::string>().find("OPENAI_API_KEY"), std::string::npos);
}

TEST_F(session_api_test, token_is_only_for_the_holder_of_a_slot) {
    settings.openai.api_key = "sk-test-key";
    restart();
    join();
    const auto queued = join();
    expect_error(respond({"POST", "action=token", {ticket_header(queued)}}), 409, "not_active");
    expect_error(respond({"POST", "action=token", {ticket_header("nope")}}), 404, "unknown_ticket");
    expect_error(respond({"POST", "action=token"}), 400, "missing_ticket");
    expect_error(respond({"GET", "action=token", {ticket_header(queued)}}), 405, "method_not_allowed");
}

TEST_F(session_api_test, token_asks_the_upstream_for_a_key_that_outlives_neither_the_ttl_nor_the_session) {
    settings.openai.api_key = "sk-test-key";
    settings.openai.token_ttl = 60s;
    restart();
    const auto t = join();
    auto ttl_now = [&] {
        const auto asked = upstream->minted_ttls.size();
        const auto res = respond({"POST", "action=token", {ticket_header(t)}});
        EXPECT_EQ(res.status, 200u) << res.body;
        if (upstream->minted_ttls.size() != asked + 1) return std::chrono::seconds{-1};
        return upstream->minted_ttls.back();
    };
    EXPECT_EQ(ttl_now(), 60s) << "300 s left: the configured ttl";
    now = t0 + 275s;
    EXPECT_EQ(ttl_now(), 25s) << "25 s left";
    now = t0 + 295s;
    EXPECT_EQ(ttl_now(), 10s) << "5 s left, but never below 10 s";
    expect_error(respond({"POST", "action=token", {ticket_header(t)}}), 429, "token_limit");
}

TEST_F(session_api_test, token_ttl_is_capped_at_two_hours) {
    settings.openai.api_key = "sk-test-key";
    settings.openai.token_ttl = 7200s;
    settings.session.session_duration = 5h;
    restart();
    const auto t = join();
    EXPECT_EQ(respond({"POST", "action=token", {ticket_header(t)}}).status, 200u);
    ASSERT_EQ(upstream->minted_ttls.size(), 1u);
    EXPECT_EQ(upstream->minted_ttls[0], 7200s);
}

TEST_F(session_api_test, token_in_relay_mode_points_to_connect) {
    settings.openai.api_key = "sk-test-key";
    settings.openai.mode = realtime_mode::relay;
    restart();
    const auto t = join();
    expect_error(respond({"POST", "action=token", {ticket_header(t)}}), 409, "relay_mode");
}

TEST_F(session_api_test, call_records_the_upstream_call_of_the_holder) {
    const auto holder = join();
    const auto queued = join();
    const auto res = respond({"POST", "action=call", {ticket_header(holder)}, R"({"callId":"rtc_abc-123_X"})"});
    EXPECT_EQ(res.status, 200u) << res.body;
    EXPECT_EQ(body_of(res), json::parse(R"({"ok":true})"));

    expect_error(respond({"POST", "action=call", {ticket_header(holder)}, "not json"}), 400, "bad_request");
    expect_error(respond({"POST", "action=call", {ticket_header(holder)}, R"({"callId":7})"}), 400, "bad_request");
    expect_error(respond({"POST", "action=call", {ticket_header(holder)}, R"({"callId":"rtc/../x"})"}), 400, "bad_call_id");
    expect_error(respond({"POST", "action=call", {ticket_header(holder)}, R"({"callId":""})"}), 400, "bad_call_id");
    expect_error(respond({"POST", "action=call", {ticket_header(holder)}, R"({"callId":")" + std::string(129, 'a') + "\"}"}),
                 400, "bad_call_id");
    expect_error(respond({"POST", "action=call", {ticket_header(queued)}, R"({"callId":"rtc_q"})"}), 409, "not_active");
    expect_error(respond({"POST", "action=call", {ticket_header("nope")}, R"({"callId":"rtc_q"})"}), 404, "unknown_ticket");

    // A second call of the same session (a page reload) is remembered too, once.
    EXPECT_EQ(respond({"POST", "action=call", {ticket_header(holder)}, R"({"callId":"rtc_second"})"}).status, 200u);
    EXPECT_EQ(respond({"POST", "action=call", {ticket_header(holder)}, R"({"callId":"rtc_second"})"}).status, 200u);
    EXPECT_TRUE(upstream->hangups.empty());
    // Every call recorded, and only those, is hung up when the session ends.
    EXPECT_EQ(respond({"POST", "action=leave", {ticket_header(holder)}}).status, 200u);
    EXPECT_EQ(upstream->hangups, (std::vector<std::string>{"rtc_abc-123_X", "rtc_second"}));
}

TEST_F(session_api_test, connect_relays_an_sdp_offer_in_relay_mode_only) {
    settings.openai.api_key = "sk-test-key";
    const std::string sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n";
    const auto token_mode_ticket = join();
    expect_error(respond({"POST", "action=connect", {ticket_header(token_mode_ticket), {"content-type", "application/sdp"}}, sdp}),
                 409, "token_mode");

    settings.openai.mode = realtime_mode::relay;
    restart();
    const auto t = join();
    const auto queued = join();
    expect_error(respond({"POST", "action=connect", {ticket_header(t), {"content-type", "text/plain"}}, sdp}), 415,
                 "unsupported_media_type");
    expect_error(respond({"POST", "action=connect", {ticket_header(t), {"content-type", "application/sdp"}}, "hello"}), 400,
                 "bad_sdp");
    expect_error(respond({"POST", "action=connect", {ticket_header(queued), {"content-type", "application/sdp"}}, sdp}), 409,
                 "not_active");
    const auto res = respond({"POST", "action=connect", {ticket_header(t), {"content-type", "application/sdp"}}, sdp});
    EXPECT_EQ(res.status, 201u) << res.body;
    EXPECT_EQ(upstream->offers, std::vector<std::string>{sdp});
    EXPECT_EQ(respond({"POST", "action=leave", {ticket_header(t)}}).status, 200u);
    EXPECT_EQ(upstream->hangups, std::vector<std::string>{"rtc_relayed_1"}) << "the relayed call ends with its session";

    settings.openai.api_key.clear();
    restart();
    const auto again = join();
    expect_error(respond({"POST", "action=connect", {ticket_header(again), {"content-type", "application/sdp"}}, sdp}), 503,
                 "not_configured");
}

// --- routing ------------------------------------------------------------------------------------

// --- the live channel's warnings ----------------------------------------------------------------

// A page's live channel: keeps every message pushed to it.
class recording_channel final : public live_channel {
public:
    std::vector<json> messages;
    bool finished = false;
    void push(std::shared_ptr<const std::string> message, bool) override { messages.push_back(json::parse(*message)); }
    void finish(close_reason) override { finished = true; }

    std::vector<json> of_type(const std::string& type) const {
        std::vector<json> out;
        for (const auto& m : messages) {
            if (m.value("type", "") == type) out.push_back(m);
        }
        return out;
    }
};

// A warning that fires while the page has no channel (it is reconnecting) comes on the next one,
// marked as told again; each later reopen tells the same warning, never a new one.
TEST_F(session_api_test, a_warning_missed_while_the_channel_was_down_comes_again_on_the_next_channel_once_as_the_same) {
    const auto ticket = join();  // active until t0 + 300 s; warnings at 180, 120 and 60 s left
    const auto open = [&] {
        auto channel = std::make_shared<recording_channel>();
        const auto id = service->open_channel(ticket, channel);
        ioc.restart();
        ioc.poll();
        return std::pair{id, channel};
    };
    const auto close = [&](channel_id id) {
        service->close_channel(id);
        ioc.restart();
        ioc.poll();
    };
    auto [first_id, first] = open();
    ASSERT_EQ(first->of_type("status").size(), 1u);
    EXPECT_FALSE(first->of_type("status")[0].contains("lastWarningSeconds")) << "no warning yet";
    EXPECT_TRUE(first->of_type("warning").empty());

    now = t0 + 119s;  // the page loses its channel a second before the 3-minute warning
    close(first_id);
    now = t0 + 121s;
    run_deadlines();  // the warning fires with no channel open
    EXPECT_TRUE(first->of_type("warning").empty()) << "the closed channel got it";
    EXPECT_EQ(body_of(respond({"GET", "action=status", {ticket_header(ticket)}})).value("lastWarningSeconds", 0), 180);

    auto [second_id, second] = open();  // the page is back
    ASSERT_EQ(second->of_type("status").size(), 1u);
    EXPECT_EQ(second->of_type("status")[0].value("lastWarningSeconds", 0), 180);
    auto warnings = second->of_type("warning");
    ASSERT_EQ(warnings.size(), 1u) << "the missed warning did not come on the new channel";
    EXPECT_EQ(warnings[0], json::parse(R"({"type":"warning","warningSeconds":180,"minutesLeft":3,"remainingSeconds":179,"replay":true})"));

    now = t0 + 122s;  // a second reconnect: the same warning, not a new one
    close(second_id);
    auto [third_id, third] = open();
    warnings = third->of_type("warning");
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0].value("warningSeconds", 0), 180);
    EXPECT_EQ(warnings[0].value("replay", false), true);
    EXPECT_EQ(warnings[0].value("remainingSeconds", 0), 178);

    now = t0 + 180s;  // the 2-minute warning finds the channel open: a first push, not a replay
    run_deadlines();
    warnings = third->of_type("warning");
    ASSERT_EQ(warnings.size(), 2u);
    EXPECT_EQ(warnings[1], json::parse(R"({"type":"warning","warningSeconds":120,"minutesLeft":2,"remainingSeconds":120})"));
    EXPECT_EQ(body_of(respond({"GET", "action=status", {ticket_header(ticket)}})).value("lastWarningSeconds", 0), 120);
    close(third_id);
}

struct method_case {
    const char* action;
    const char* wrong_method;
    const char* allow;
};

TEST_F(session_api_test, wrong_methods_are_405_with_allow) {
    for (const auto& c : {method_case{"join", "GET", "POST"}, method_case{"status", "POST", "GET, HEAD"},
                          method_case{"heartbeat", "GET", "POST"}, method_case{"leave", "GET", "POST"},
                          method_case{"stats", "DELETE", "GET, HEAD"}, method_case{"forceEndAll", "PUT", "GET, POST"},
                          method_case{"token", "GET", "POST"}, method_case{"call", "GET", "POST"},
                          method_case{"connect", "GET", "POST"}}) {
        const auto res = respond({c.wrong_method, std::string("action=") + c.action});
        expect_error(res, 405, "method_not_allowed");
        EXPECT_EQ(res.header("Allow"), c.allow) << c.action;
    }
    EXPECT_EQ(stats()["activeSessions"], 0);
}

TEST_F(session_api_test, unknown_or_missing_actions_are_400) {
    expect_error(respond({"POST", "action=teleport"}), 400, "unknown_action");
    expect_error(respond({"GET", ""}), 400, "missing_action");
    expect_error(respond({"GET", "action="}), 400, "missing_action");
    expect_error(respond({"GET", "other=join"}), 400, "missing_action");
    EXPECT_EQ(respond({"POST", "x=1&action=j%6Fin"}).status, 200u) << "the action is percent-decoded";
}

}  // namespace
}  // namespace voice_broker
