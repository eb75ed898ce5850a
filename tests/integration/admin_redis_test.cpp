// The admin API in redis mode (issues 12, 16) over real sockets: two servers share one real
// redis-server, as two instances behind a load balancer would.  An operator signed in on one
// sees the other's visitors, ends a session held there, pauses and resumes admissions for both,
// and changes the limits of both; the other server's own answers show each change.
#include "redis_test_server.hpp"
#include "test_client.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace voice_broker;
using namespace voice_broker::testing;

namespace {

const std::string token = "the-admin-token-for-tests-0123456789";

settings_map redis_settings(const redis_test_server& redis, const std::string& instance) {
    return {{"ADMIN_TOKEN", token},
            {"STATE_STORE", "redis"},
            {"REDIS_URL", "redis://127.0.0.1:" + std::to_string(redis.port()) + "/0"},
            {"REDIS_KEY_PREFIX", "admin-redis-" + std::to_string(::getpid())},
            {"INSTANCE_ID", instance},
            {"MAX_CONCURRENT_USERS", "1"}};
}

header_list same_origin(std::uint16_t port, header_list more = {}) {
    more.emplace_back("Origin", "http://127.0.0.1:" + std::to_string(port));
    more.emplace_back("Host", "127.0.0.1:" + std::to_string(port));
    return more;
}

std::string sign_in(std::uint16_t port) {
    const auto r = fetch(port, "POST", "/api/admin/login", same_origin(port, {{"Content-Type", "application/json"}}),
                         nlohmann::json{{"token", token}}.dump());
    EXPECT_EQ(r.status, 200u) << r.body;
    const auto cookie = r.header("set-cookie");
    return cookie.substr(0, cookie.find(';'));
}

response admin(std::uint16_t port, const std::string& method, const std::string& path, const std::string& cookie,
               const std::string& body = {}) {
    auto headers = same_origin(port, {{"Cookie", cookie}});
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return fetch(port, method, path, headers, body);
}

nlohmann::json status(std::uint16_t port, const std::string& ticket) {
    return fetch(port, "GET", "/api/session?action=status", {{"X-Session-Ticket", ticket}}).json();
}

}  // namespace

TEST(admin_redis, an_operator_on_one_server_sees_and_steers_the_visitors_of_another) {
    redis_test_server redis;
    test_server a(redis_settings(redis, "vb-a"));
    test_server b(redis_settings(redis, "vb-b"));
    // Not const: a key missing from an answer (a 503 under load) reads as null and fails an
    // expectation, where a const json's operator[] would abort the whole test binary.
    auto talker = fetch(b.port(), "POST", "/api/session?action=join").json();
    auto waiter = fetch(b.port(), "POST", "/api/session?action=join").json();
    ASSERT_EQ(talker["state"], "active") << talker.dump();
    ASSERT_EQ(waiter["state"], "queued") << waiter.dump();

    const auto cookie = sign_in(a.port());
    auto state = admin(a.port(), "GET", "/api/admin/state", cookie).json();
    EXPECT_EQ(state["storeKind"], "redis");
    ASSERT_EQ(state["sessions"].size(), 1u) << state.dump();
    ASSERT_EQ(state["queue"].size(), 1u) << state.dump();
    EXPECT_EQ(state["sessions"][0]["instance"], "vb-b");
    std::set<std::string> instances;
    for (const auto& i : state["instances"]) instances.insert(i["id"].get<std::string>());
    EXPECT_EQ(instances, (std::set<std::string>{"vb-a", "vb-b"}));
    const auto talking = state["sessions"][0]["id"].get<std::string>();

    EXPECT_EQ(admin(a.port(), "POST", "/api/admin/pause", cookie).json()["paused"], true);
    EXPECT_EQ(admin(a.port(), "POST", "/api/admin/sessions/" + talking + "/end", cookie).json()["ended"], true);
    EXPECT_EQ(status(b.port(), talker["ticket"])["reason"], "forced");
    const auto paused = status(b.port(), waiter["ticket"]);
    EXPECT_EQ(paused["state"], "queued") << "paused on a: nobody is admitted on b either";
    EXPECT_EQ(paused["paused"], true);
    EXPECT_NE(fetch(b.port(), "GET", "/metrics").body.find("\nvoice_broker_admissions_paused 1\n"), std::string::npos)
        << "b's gauge follows the pause set on a";

    EXPECT_EQ(admin(a.port(), "POST", "/api/admin/resume", cookie).json()["paused"], false);
    EXPECT_EQ(status(b.port(), waiter["ticket"])["state"], "active");
    EXPECT_NE(fetch(b.port(), "GET", "/metrics").body.find("\nvoice_broker_admissions_paused 0\n"), std::string::npos);

    auto limits = admin(a.port(), "PUT", "/api/admin/limits", cookie, R"({"maxConcurrentUsers":2})").json();
    EXPECT_EQ(limits["limits"]["maxConcurrentUsers"], 2) << limits.dump();
    auto on_b = admin(b.port(), "GET", "/api/admin/state", sign_in(b.port())).json();
    EXPECT_EQ(on_b["limits"]["maxConcurrentUsers"], 2) << on_b.dump();
    EXPECT_EQ(fetch(b.port(), "POST", "/api/session?action=join").json()["state"], "active") << "the second slot, on b";
    EXPECT_EQ(admin(a.port(), "POST", "/api/admin/sessions/99999/end", cookie).status, 404u);
}
