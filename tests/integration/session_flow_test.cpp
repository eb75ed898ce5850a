// The broker through the real server: queueing, pushes, warnings on the wall clock, admin API,
// abandonment and a crowd joining at once.  Sessions last seconds, from config.
#include "test_client.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <future>
#include <set>

using namespace voice_broker;
using namespace voice_broker::testing;
using steady = std::chrono::steady_clock;

namespace {

struct visitor {
    std::string ticket;
    nlohmann::json joined;
};

visitor join(std::uint16_t port) {
    const auto r = fetch(port, "POST", "/api/session?action=join");
    EXPECT_EQ(r.status, 200u) << r.body;
    const auto doc = r.json();
    return {doc["ticket"].get<std::string>(), doc};
}

nlohmann::json status(std::uint16_t port, const std::string& ticket) {
    return fetch(port, "GET", "/api/session?action=status", {{"X-Session-Ticket", ticket}}).json();
}

double seconds_since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

}  // namespace

TEST(session_flow, second_visitor_waits_then_is_admitted_by_push_and_warnings_arrive_on_time) {
    test_server s(settings_map{{"SESSION_DURATION_SECONDS", "6"}, {"WARNING_SECONDS", "3,2,1"}});
    const auto t0 = steady::now();
    const auto first = join(s.port());
    ASSERT_EQ(first.joined["state"], "active");
    EXPECT_EQ(first.joined["remainingSeconds"], 6);
    EXPECT_EQ(first.joined["limits"]["warningSeconds"], nlohmann::json::array({3, 2, 1}));
    ws_client first_ws(s.port(), "/api/session/ws?ticket=" + first.ticket);
    ASSERT_EQ((*first_ws.next_of_type("status"))["state"], "active");

    const auto second = join(s.port());
    ASSERT_EQ(second.joined["state"], "queued");
    EXPECT_EQ(second.joined["position"], 1);
    EXPECT_EQ(second.joined["queueLength"], 1);
    EXPECT_LE(second.joined["etaSeconds"].get<int>(), 6);
    EXPECT_GE(second.joined["etaSeconds"].get<int>(), 5);
    ws_client second_ws(s.port(), "/api/session/ws?ticket=" + second.ticket);
    const auto queued = second_ws.next_of_type("status");
    ASSERT_TRUE(queued);
    EXPECT_EQ((*queued)["state"], "queued");
    EXPECT_EQ((*queued)["position"], 1);

    for (int minutes_left : {3, 2, 1}) {
        const auto w = first_ws.next_of_type("warning", 8s);
        ASSERT_TRUE(w) << "warning " << minutes_left;
        const double at = seconds_since(t0);
        EXPECT_EQ((*w)["remainingSeconds"], minutes_left);
        EXPECT_EQ((*w)["minutesLeft"], 1) << "seconds-scale warnings round up to one minute";
        EXPECT_NEAR(at, 6.0 - minutes_left, 0.5) << "warning " << minutes_left << " came at " << at << " s";
    }
    const auto ended = first_ws.next_of_type("ended", 3s);
    ASSERT_TRUE(ended);
    EXPECT_EQ((*ended)["reason"], "expired");
    EXPECT_NEAR(seconds_since(t0), 6.0, 0.5);

    const auto admitted = second_ws.next_of_type("status", 3s);
    ASSERT_TRUE(admitted);
    EXPECT_EQ((*admitted)["state"], "active");
    EXPECT_EQ((*admitted)["remainingSeconds"], 6);
    EXPECT_EQ(status(s.port(), first.ticket)["reason"], "expired");
}

TEST(session_flow, joining_again_with_the_same_ticket_keeps_one_place) {
    test_server s;
    const auto a = join(s.port());
    const auto again = fetch(s.port(), "POST", "/api/session?action=join", {{"X-Session-Ticket", a.ticket}}).json();
    EXPECT_EQ(again["ticket"], a.ticket);
    const auto by_cookie = fetch(s.port(), "POST", "/api/session?action=join", {{"Cookie", "vb_ticket=" + a.ticket}}).json();
    EXPECT_EQ(by_cookie["ticket"], a.ticket);
    const auto stats = fetch(s.port(), "GET", "/api/session?action=stats").json();
    EXPECT_EQ(stats["activeSessions"], 1);
    EXPECT_EQ(stats["queueLength"], 0);
}

TEST(session_flow, leave_frees_the_slot_at_once_and_the_queue_moves_up) {
    test_server s;
    const auto a = join(s.port());
    const auto b = join(s.port());
    ws_client b_ws(s.port(), "/api/session/ws?ticket=" + b.ticket);
    ASSERT_EQ((*b_ws.next_of_type("status"))["state"], "queued");
    const auto left = fetch(s.port(), "POST", "/api/session?action=leave", {{"X-Session-Ticket", a.ticket}});
    EXPECT_EQ(left.json(), (nlohmann::json{{"state", "ended"}, {"reason", "left"}}));
    const auto pushed = b_ws.next_of_type("status", 2s);
    ASSERT_TRUE(pushed);
    EXPECT_EQ((*pushed)["state"], "active");
}

TEST(session_flow, queue_full_is_503_with_retry_after) {
    test_server s(settings_map{{"MAX_QUEUE_LENGTH", "2"}});
    join(s.port());
    join(s.port());
    join(s.port());
    const auto r = fetch(s.port(), "POST", "/api/session?action=join");
    EXPECT_EQ(r.status, 503u);
    EXPECT_EQ(r.json()["error"]["code"], "queue_full");
    EXPECT_FALSE(r.header("retry-after").empty());
}

TEST(session_flow, force_end_all_needs_the_right_token) {
    test_server s(settings_map{{"ADMIN_TOKEN", "a-long-enough-admin-token"}, {"MAX_CONCURRENT_USERS", "2"}});
    const auto a = join(s.port());
    const auto b = join(s.port());
    const auto c = join(s.port());
    ws_client a_ws(s.port(), "/api/session/ws?ticket=" + a.ticket);
    ws_client c_ws(s.port(), "/api/session/ws?ticket=" + c.ticket);
    ASSERT_TRUE(a_ws.next_of_type("status"));
    ASSERT_EQ((*c_ws.next_of_type("status"))["state"], "queued");

    const auto missing = fetch(s.port(), "GET", "/api/session?action=forceEndAll");
    EXPECT_EQ(missing.status, 401u);
    EXPECT_EQ(missing.json()["error"]["code"], "unauthorized");
    const auto wrong = fetch(s.port(), "GET", "/api/session?action=forceEndAll", {{"x-admin-token", "guess"}});
    EXPECT_EQ(wrong.status, 401u);
    EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=stats").json()["activeSessions"], 2);

    const auto ok = fetch(s.port(), "GET", "/api/session?action=forceEndAll", {{"x-admin-token", "a-long-enough-admin-token"}});
    EXPECT_EQ(ok.status, 200u);
    EXPECT_EQ(ok.json(), (nlohmann::json{{"success", true}, {"endedSessions", 2}}));
    const auto ended = a_ws.next_of_type("ended", 2s);
    ASSERT_TRUE(ended);
    EXPECT_EQ((*ended)["reason"], "forced");
    EXPECT_EQ((*c_ws.next_of_type("status", 2s))["state"], "active") << "the queue moved up";
    EXPECT_EQ(status(s.port(), b.ticket)["reason"], "forced");
    // POST works too, as the operator guide's variant
    EXPECT_EQ(fetch(s.port(), "POST", "/api/session?action=forceEndAll", {{"x-admin-token", "a-long-enough-admin-token"}}).status,
              200u);
}

TEST(session_flow, repeated_wrong_admin_tokens_are_slowed_down) {
    test_server s(settings_map{{"ADMIN_TOKEN", "a-long-enough-admin-token"}});
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=forceEndAll", {{"x-admin-token", "guess"}}).status, 401u);
    }
    const auto blocked = fetch(s.port(), "GET", "/api/session?action=forceEndAll", {{"x-admin-token", "a-long-enough-admin-token"}});
    EXPECT_EQ(blocked.status, 429u);
    EXPECT_FALSE(blocked.header("retry-after").empty());
}

TEST(session_flow, admin_api_disabled_without_a_token) {
    test_server s;
    const auto r = fetch(s.port(), "GET", "/api/session?action=forceEndAll", {{"x-admin-token", "anything"}});
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(r.json()["error"]["code"], "admin_disabled");
    EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("ADMIN_TOKEN"), std::string::npos);
}

TEST(session_flow, closing_the_socket_abandons_the_slot_after_the_heartbeat_timeout) {
    test_server s(settings_map{{"HEARTBEAT_TIMEOUT_SECONDS", "1"}});
    const auto a = join(s.port());
    const auto b = join(s.port());
    ws_client b_ws(s.port(), "/api/session/ws?ticket=" + b.ticket);
    ASSERT_EQ((*b_ws.next_of_type("status"))["state"], "queued");
    {
        ws_client a_ws(s.port(), "/api/session/ws?ticket=" + a.ticket);
        ASSERT_TRUE(a_ws.next_of_type("status"));
        a_ws.close();
    }
    const auto t0 = steady::now();
    const auto admitted = b_ws.next_of_type("status", 5s);
    ASSERT_TRUE(admitted);
    EXPECT_EQ((*admitted)["state"], "active");
    EXPECT_NEAR(seconds_since(t0), 1.0, 0.6);
    EXPECT_EQ(status(s.port(), a.ticket)["reason"], "abandoned");
}

TEST(session_flow, heartbeats_keep_a_visitor_without_websocket_alive) {
    test_server s(settings_map{{"HEARTBEAT_TIMEOUT_SECONDS", "2"}});
    const auto a = join(s.port());
    for (int i = 0; i < 5; ++i) {
        // The server only counts what arrives; a heartbeat each ~half timeout keeps the place.
        ASSERT_FALSE(s.logs().wait_for("abandoned", 700ms)) << s.logs().text();
        EXPECT_EQ(fetch(s.port(), "POST", "/api/session?action=heartbeat", {{"X-Session-Ticket", a.ticket}}).json()["state"],
                  "active");
    }
    EXPECT_TRUE(s.logs().wait_for("ended (abandoned)", 4s));
    EXPECT_EQ(status(s.port(), a.ticket)["reason"], "abandoned");
}

TEST(session_flow, unknown_ticket_on_the_live_channel_gets_an_error) {
    test_server s;
    ws_client ws(s.port(), "/api/session/ws?ticket=AAAAAAAAAAAAAAAAAAAAAA");
    const auto msg = ws.next(2s);
    ASSERT_TRUE(msg);
    EXPECT_EQ((*msg)["type"], "error");
    EXPECT_EQ((*msg)["error"]["code"], "unknown_ticket");
    EXPECT_FALSE(ws.next(2s));
    EXPECT_TRUE(ws.is_closed());
}

TEST(session_flow, cross_site_origin_cannot_open_the_live_channel) {
    test_server s;
    const auto a = join(s.port());
    EXPECT_THROW(ws_client(s.port(), "/api/session/ws?ticket=" + a.ticket, {{"Origin", "https://evil.example"}}),
                 std::runtime_error);
    EXPECT_NO_THROW(ws_client(s.port(), "/api/session/ws?ticket=" + a.ticket,
                              {{"Origin", "http://127.0.0.1:" + std::to_string(s.port())}}));
}

TEST(session_flow, websocket_heartbeat_message_is_accepted) {
    test_server s;
    const auto a = join(s.port());
    ws_client ws(s.port(), "/api/session/ws?ticket=" + a.ticket);
    ASSERT_TRUE(ws.next_of_type("status"));
    ws.send(R"({"type":"heartbeat"})");
    ws.send("not json at all");
    EXPECT_EQ(status(s.port(), a.ticket)["state"], "active");
}

TEST(session_flow, a_crowd_of_150_joining_at_once_gets_n_slots_and_distinct_positions) {
    constexpr int crowd = 150;
    constexpr int slots = 3;
    test_server s(settings_map{{"MAX_CONCURRENT_USERS", std::to_string(slots)}, {"MAX_QUEUE_LENGTH", "500"}});
    std::vector<std::future<nlohmann::json>> joins;
    std::promise<void> go;
    auto start = go.get_future().share();
    for (int i = 0; i < crowd; ++i) {
        joins.push_back(std::async(std::launch::async, [&, start] {
            http_client c(s.port());
            start.wait();
            return c.post("/api/session?action=join").json();
        }));
    }
    go.set_value();
    int active = 0;
    std::set<int> positions;
    std::set<std::string> tickets;
    for (auto& f : joins) {
        const auto doc = f.get();
        tickets.insert(doc["ticket"].get<std::string>());
        if (doc["state"] == "active") ++active;
        else positions.insert(doc["position"].get<int>());
    }
    EXPECT_EQ(active, slots);
    EXPECT_EQ(tickets.size(), static_cast<std::size_t>(crowd));
    ASSERT_EQ(positions.size(), static_cast<std::size_t>(crowd - slots));
    EXPECT_EQ(*positions.begin(), 1);
    EXPECT_EQ(*positions.rbegin(), crowd - slots);
    const auto stats = fetch(s.port(), "GET", "/api/session?action=stats").json();
    EXPECT_EQ(stats["activeSessions"], slots);
    EXPECT_EQ(stats["queueLength"], crowd - slots);
}

TEST(session_flow, stats_and_metrics_describe_the_state_without_tickets) {
    test_server s(settings_map{{"SESSION_DURATION_SECONDS", "120"}});
    const auto a = join(s.port());
    join(s.port());
    const auto stats = fetch(s.port(), "GET", "/api/session?action=stats");
    const auto doc = stats.json();
    EXPECT_EQ(doc["activeSessions"], 1);
    EXPECT_EQ(doc["maxConcurrentUsers"], 1);
    EXPECT_EQ(doc["queueLength"], 1);
    EXPECT_EQ(doc["maxQueueLength"], 50);
    EXPECT_EQ(doc["sessionDurationMinutes"], 2.0);
    EXPECT_EQ(doc["sessions"].size(), 1u);
    EXPECT_EQ(doc["today"]["sessionsStarted"], 1);
    EXPECT_TRUE(doc["today"]["estimatedCostUsd"].is_number());
    EXPECT_TRUE(doc["uptimeSeconds"].is_number());
    EXPECT_EQ(stats.body.find(a.ticket), std::string::npos);
    const auto metrics = fetch(s.port(), "GET", "/metrics");
    EXPECT_EQ(metrics.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
    for (const auto* family : {"voice_broker_active_sessions 1", "voice_broker_queue_length 1", "voice_broker_store_entries 2",
                               "voice_broker_admissions_total 1", "voice_broker_session_ends_total{reason=\"expired\"} 0",
                               "voice_broker_queue_wait_seconds_bucket", "voice_broker_websocket_clients 0",
                               "voice_broker_http_requests_total{status=\"200\"}"}) {
        EXPECT_NE(metrics.body.find(family), std::string::npos) << family;
    }
    EXPECT_EQ(metrics.body.find(a.ticket), std::string::npos);
}

TEST(session_flow, reload_raises_the_slot_count_without_dropping_anyone) {
    test_server s;
    const auto a = join(s.port());
    const auto b = join(s.port());
    ws_client b_ws(s.port(), "/api/session/ws?ticket=" + b.ticket);
    ASSERT_EQ((*b_ws.next_of_type("status"))["state"], "queued");
    s.get().reload(make_config({{"STATIC_DIR", s.settings().static_dir}, {"MAX_CONCURRENT_USERS", "2"}}, s.dir().path()));
    const auto pushed = b_ws.next_of_type("status", 2s);
    ASSERT_TRUE(pushed);
    EXPECT_EQ((*pushed)["state"], "active");
    EXPECT_EQ(status(s.port(), a.ticket)["state"], "active");
}
