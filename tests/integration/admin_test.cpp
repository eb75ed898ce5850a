// Integration tests for the admin API (issue 16, docs/API.md "Admin API") over real sockets: the
// sign-in and its throttle, Origin, expired and signed-out logins, the actions with their audit
// lines, the limits persisting across a restart, the live view, and no secret anywhere.
#include "test_client.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace voice_broker;
using namespace voice_broker::testing;

namespace {

const std::string token = "the-admin-token-for-tests-0123456789";

settings_map admin_settings(settings_map extra = {}) {
    extra.emplace("ADMIN_TOKEN", token);
    return extra;
}

header_list same_origin(std::uint16_t port, header_list more = {}) {
    more.emplace_back("Origin", "http://127.0.0.1:" + std::to_string(port));
    more.emplace_back("Host", "127.0.0.1:" + std::to_string(port));
    return more;
}

// Signs in; returns the cookie pair "vb_admin=...".
std::string sign_in(std::uint16_t port) {
    const auto r = fetch(port, "POST", "/api/admin/login", same_origin(port, {{"Content-Type", "application/json"}}),
                         nlohmann::json{{"token", token}}.dump());
    EXPECT_EQ(r.status, 200u) << r.body;
    const auto cookie = r.header("set-cookie");
    EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
    return cookie.substr(0, cookie.find(';'));
}

response admin(std::uint16_t port, const std::string& method, const std::string& path, const std::string& cookie,
               const std::string& body = {}) {
    auto headers = same_origin(port, {{"Cookie", cookie}});
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return fetch(port, method, path, headers, body);
}

std::string join_ticket(std::uint16_t port) {
    return fetch(port, "POST", "/api/session?action=join").json().value("ticket", "");
}

}  // namespace

TEST(admin_api, disabled_without_an_admin_token) {
    test_server s;
    const auto r = fetch(s.port(), "GET", "/api/admin/state");
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(r.json()["error"]["code"], "admin_disabled");
}

TEST(admin_api, a_wrong_token_then_the_throttle_then_not_even_the_right_one) {
    test_server s(admin_settings());
    for (int i = 0; i < 5; ++i) {
        const auto r = fetch(s.port(), "POST", "/api/admin/login", same_origin(s.port(), {{"Content-Type", "application/json"}}),
                             R"({"token":"wrong-guess-number-)" + std::to_string(i) + "\"}");
        EXPECT_EQ(r.status, 401u) << r.body;
        EXPECT_TRUE(r.header("set-cookie").empty());
    }
    const auto throttled = fetch(s.port(), "POST", "/api/admin/login", same_origin(s.port(), {{"Content-Type", "application/json"}}),
                                 nlohmann::json{{"token", token}}.dump());
    EXPECT_EQ(throttled.status, 429u);
    EXPECT_FALSE(throttled.header("retry-after").empty());
    // The throttle is the one forceEndAll shares.
    EXPECT_EQ(fetch(s.port(), "POST", "/api/session?action=forceEndAll", {{"x-admin-token", token}}).status, 429u);
}

TEST(admin_api, a_missing_or_foreign_origin_is_refused) {
    test_server s(admin_settings());
    const auto no_origin = fetch(s.port(), "POST", "/api/admin/login", {{"Content-Type", "application/json"}},
                                 nlohmann::json{{"token", token}}.dump());
    EXPECT_EQ(no_origin.status, 403u);
    EXPECT_EQ(no_origin.json()["error"]["code"], "bad_origin");
    const auto cookie = sign_in(s.port());
    const auto foreign = fetch(s.port(), "POST", "/api/admin/pause",
                               {{"Cookie", cookie}, {"Origin", "https://evil.example"}, {"Host", "127.0.0.1"}});
    EXPECT_EQ(foreign.status, 403u);
    EXPECT_EQ(foreign.json()["error"]["code"], "bad_origin");
    // A script with the token may omit Origin; a foreign one is refused there too.
    EXPECT_EQ(fetch(s.port(), "POST", "/api/admin/pause", {{"x-admin-token", token}}).status, 200u);
    EXPECT_EQ(fetch(s.port(), "POST", "/api/admin/resume", {{"x-admin-token", token}, {"Origin", "https://evil.example"}}).status, 403u);
    // The live view too.
    EXPECT_THROW(ws_client(s.port(), "/api/admin/ws", {{"Cookie", cookie}, {"Origin", "https://evil.example"}}), std::runtime_error);
}

TEST(admin_api, an_expired_or_signed_out_login_is_refused) {
    test_server s(admin_settings({{"ADMIN_LOGIN_SECONDS", "1"}}));
    const auto expiring = sign_in(s.port());
    EXPECT_EQ(admin(s.port(), "GET", "/api/admin/state", expiring).status, 200u);
    const auto status = admin(s.port(), "GET", "/api/admin/login", expiring);
    EXPECT_EQ(status.json()["signedIn"], true);
    // Unused for longer than its lifetime: gone.
    bool refused = false;
    for (int i = 0; i < 40 && !refused; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the login's lifetime is wall time; nothing announces its end
        refused = fetch(s.port(), "GET", "/api/admin/login", same_origin(s.port(), {{"Cookie", expiring}})).json()["signedIn"] == false;
    }
    EXPECT_TRUE(refused);
    EXPECT_EQ(admin(s.port(), "GET", "/api/admin/state", expiring).status, 401u);

    test_server t(admin_settings());
    const auto cookie = sign_in(t.port());
    const auto out = admin(t.port(), "POST", "/api/admin/logout", cookie);
    EXPECT_EQ(out.status, 200u);
    EXPECT_NE(out.header("set-cookie").find("Max-Age=0"), std::string::npos);
    EXPECT_EQ(admin(t.port(), "GET", "/api/admin/state", cookie).status, 401u) << "a replayed cookie after logout";
    EXPECT_THROW(ws_client(t.port(), "/api/admin/ws", same_origin(t.port(), {{"Cookie", cookie}})), std::runtime_error);
}

TEST(admin_api, the_actions_steer_the_queue_and_each_writes_an_audit_line) {
    test_server s(admin_settings({{"MAX_CONCURRENT_USERS", "1"}}));
    const auto cookie = sign_in(s.port());
    const auto a = join_ticket(s.port());
    const auto b = join_ticket(s.port());
    const auto c = join_ticket(s.port());
    auto state = admin(s.port(), "GET", "/api/admin/state", cookie).json();
    ASSERT_EQ(state["sessions"].size(), 1u);
    ASSERT_EQ(state["queue"].size(), 2u);
    EXPECT_EQ(state["sessions"][0]["clientAddress"], "127.0.0.x");
    const auto talking = state["sessions"][0]["id"].get<std::string>();
    const auto second_in_line = state["queue"][1]["id"].get<std::string>();

    EXPECT_EQ(admin(s.port(), "POST", "/api/admin/queue/" + second_in_line + "/remove", cookie).status, 200u);
    EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=status", {{"X-Session-Ticket", c}}).json()["reason"], "removed");
    EXPECT_NE(fetch(s.port(), "GET", "/metrics").body.find("\nvoice_broker_admissions_paused 0\n"), std::string::npos);
    EXPECT_EQ(admin(s.port(), "POST", "/api/admin/pause", cookie).json()["paused"], true);
    EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=status", {{"X-Session-Ticket", b}}).json()["paused"], true);
    EXPECT_NE(fetch(s.port(), "GET", "/metrics").body.find("\nvoice_broker_admissions_paused 1\n"), std::string::npos);
    EXPECT_EQ(admin(s.port(), "POST", "/api/admin/sessions/" + talking + "/end", cookie).status, 200u);
    EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=status", {{"X-Session-Ticket", a}}).json()["reason"], "forced");
    EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=status", {{"X-Session-Ticket", b}}).json()["state"], "queued")
        << "paused: nobody is admitted";
    EXPECT_EQ(admin(s.port(), "POST", "/api/admin/resume", cookie).json()["paused"], false);
    EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=status", {{"X-Session-Ticket", b}}).json()["state"], "active");
    EXPECT_NE(fetch(s.port(), "GET", "/metrics").body.find("\nvoice_broker_admissions_paused 0\n"), std::string::npos);
    EXPECT_EQ(admin(s.port(), "POST", "/api/admin/sessions/99999/end", cookie).status, 404u);
    EXPECT_EQ(admin(s.port(), "PUT", "/api/admin/limits", cookie, R"({"maxConcurrentUsers":0})").json()["error"]["code"], "bad_limits");
    for (const auto* line : {"admin: login", "admin: remove id=", "admin: pause", "admin: end_session id=", "admin: resume"}) {
        EXPECT_TRUE(s.logs().wait_for(line, std::chrono::milliseconds(2000))) << line << "\n" << s.logs().text();
    }
    EXPECT_NE(s.logs().text().find("by=cookie login="), std::string::npos);
}

TEST(admin_api, the_limits_persist_across_a_restart) {
    temp_dir data;
    const auto dir = data.path().string();
    {
        test_server s(admin_settings({{"DATA_DIR", dir}}));
        const auto r = admin(s.port(), "PUT", "/api/admin/limits", sign_in(s.port()), R"({"maxConcurrentUsers":3,"sessionDurationMinutes":2})");
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.json()["limits"]["maxConcurrentUsers"], 3);
        EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=stats").json()["maxConcurrentUsers"], 3);
        EXPECT_EQ(admin(s.port(), "POST", "/api/admin/pause", sign_in(s.port())).status, 200u);
    }
    test_server again(admin_settings({{"DATA_DIR", dir}}));
    const auto stats = fetch(again.port(), "GET", "/api/session?action=stats").json();
    EXPECT_EQ(stats["maxConcurrentUsers"], 3);
    EXPECT_EQ(stats["sessionDurationMinutes"], 2.0);
    EXPECT_EQ(stats["paused"], true);
    EXPECT_NE(fetch(again.port(), "GET", "/metrics").body.find("\nvoice_broker_admissions_paused 1\n"), std::string::npos)
        << "the restored pause is on the gauge from the start";
}

TEST(admin_api, the_live_view_pushes_the_state_and_closes_4401_at_logout) {
    test_server s(admin_settings());
    const auto cookie = sign_in(s.port());
    ws_client view(s.port(), "/api/admin/ws", same_origin(s.port(), {{"Cookie", cookie}}));
    const auto first = view.next_of_type("state");
    ASSERT_TRUE(first);
    EXPECT_EQ((*first)["sessions"].size(), 0u);
    join_ticket(s.port());
    bool saw_session = false;
    for (int i = 0; i < 10 && !saw_session; ++i) {
        const auto next = view.next_of_type("state", std::chrono::milliseconds(2000));
        saw_session = next && (*next)["sessions"].size() == 1;
    }
    EXPECT_TRUE(saw_session);
    admin(s.port(), "POST", "/api/admin/logout", cookie);
    while (view.next(std::chrono::milliseconds(3000))) {
    }
    EXPECT_TRUE(view.is_closed());
    EXPECT_EQ(view.close_code(), 4401);
}

TEST(admin_api, no_secret_in_any_answer_or_log_line) {
    test_server s(admin_settings({{"OPENAI_API_KEY", "test-openai-key-not-a-real-one"}}));
    const auto cookie = sign_in(s.port());
    const auto login_id = cookie.substr(cookie.find('=') + 1);
    const auto ticket = join_ticket(s.port());
    std::string everything;
    for (const auto* path : {"/api/admin/state", "/api/admin/login"}) everything += admin(s.port(), "GET", path, cookie).body;
    everything += fetch(s.port(), "GET", "/api/session?action=stats").body;
    everything += fetch(s.port(), "GET", "/metrics").body;
    for (const auto& secret : {token, std::string("test-openai-key-not-a-real-one"), ticket}) {
        EXPECT_EQ(everything.find(secret), std::string::npos) << "an answer reveals a secret";
        EXPECT_EQ(s.logs().text().find(secret), std::string::npos) << "the log reveals a secret";
    }
    EXPECT_EQ(s.logs().text().find(login_id), std::string::npos) << "the log names only the first 6 characters of a login";
}
