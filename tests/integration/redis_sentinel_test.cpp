// Sentinel against real Debian redis-server processes on loopback ports: one master, one
// replica, three sentinels (down-after-milliseconds 1000), every one with a password.  The
// client must find the master, follow a failover after kill -9 without a restart, and treat
// READONLY as "find the master again".
#include "redis_test_loop.hpp"
#include "redis_test_server.hpp"
#include "voice_broker/redis_connection.hpp"
#include "voice_broker/redis_error.hpp"
#include "voice_broker/redis_master_locator.hpp"
#include "voice_broker/redis_probe.hpp"
#include "voice_broker/redis_subscriber.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using testing::command_outcome;
using testing::redis_server_options;
using testing::redis_test_loop;
using testing::redis_test_server;
using testing::send_command;

constexpr const char* data_password = "data-pw";
constexpr const char* sentinel_password = "sentinel-pw";
constexpr int down_after_ms = 1000;

// The value of `field` in SENTINEL MASTER's flat field/value array.
std::string sentinel_field(const redis_reply& reply, const std::string& field) {
    for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
        if (reply.elements[i].text == field) return reply.elements[i + 1].text;
    }
    return {};
}

double ms_since(std::chrono::steady_clock::time_point from) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - from).count();
}

class redis_sentinel_test : public ::testing::Test {
protected:
    void SetUp() override {
        redis_server_options data;
        data.password = data_password;
        data.master_password = data_password;  // masterauth: any of them may become a replica
        master = std::make_unique<redis_test_server>(data);
        data.replica_of = master->port();
        replica = std::make_unique<redis_test_server>(data);
        replica->wait_for_sync(5s);
        redis_server_options watcher;
        watcher.password = sentinel_password;
        watcher.master_password = data_password;
        watcher.sentinel_of = master->port();
        watcher.sentinel_down_after_ms = down_after_ms;
        watcher.extra_config = {std::string("sentinel sentinel-pass ") + sentinel_password};
        for (int i = 0; i < 3; ++i) sentinels.push_back(std::make_unique<redis_test_server>(watcher));
        // Nothing announces "the sentinels know each other and the replica": ask them.
        const bool ready = testing::eventually(
            [&] {
                for (const auto& sentinel : sentinels) {
                    const auto state = sentinel->command({"SENTINEL", "MASTER", "mymaster"});
                    if (sentinel_field(state, "num-other-sentinels") != "2" || sentinel_field(state, "num-slaves") != "1") {
                        return false;
                    }
                }
                return true;
            },
            20s);
        ASSERT_TRUE(ready) << sentinels[0]->log();
    }

    redis_sentinel_settings settings(const std::string& master_name = "mymaster") const {
        redis_sentinel_settings result;
        for (const auto& sentinel : sentinels) result.sentinels.push_back(sentinel->endpoint());
        result.master_name = master_name;
        result.password = sentinel_password;
        result.query_timeout = 300ms;
        result.watch_retry_min = 50ms;
        result.watch_retry_max = 300ms;
        return result;
    }

    redis_client_options client_options(std::shared_ptr<redis_master_locator> locator) const {
        redis_client_options options;
        options.url.password = data_password;
        options.sentinel = std::move(locator);
        options.connect_timeout = 300ms;
        options.reconnect_delay_min = 20ms;
        options.reconnect_delay_max = 200ms;
        options.subscriber_probe_interval = 500ms;
        return options;
    }

    std::pair<std::error_code, redis_endpoint> locate(redis_master_locator& locator) {
        std::optional<std::pair<std::error_code, redis_endpoint>> answer;
        locator.locate([&](std::error_code ec, redis_endpoint where) { answer.emplace(ec, where); });
        loop.run_until([&] { return answer.has_value(); }, 5s);
        return answer.value_or(std::pair{std::error_code(redis_error::timeout), redis_endpoint{}});
    }

    // Writes until one succeeds, each try with a short deadline; every retry starts from the
    // previous one's failure.  Returns the successful outcome, or the last failure.
    command_outcome write_until_success(redis_connection& connection, std::chrono::milliseconds budget,
                                        std::vector<redis_reply>* errors_seen = nullptr) {
        auto current = send_command(connection, {"INCR", "writes"}, 300ms);
        loop.run_until(
            [&] {
                if (!current->done()) return false;
                if (!current->error && !current->reply.is_error()) return true;
                if (errors_seen && current->reply.is_error()) errors_seen->push_back(current->reply);
                current = send_command(connection, {"INCR", "writes"}, 300ms);
                return false;
            },
            budget);
        return *current;
    }

    redis_test_loop loop;
    std::unique_ptr<redis_test_server> master;
    std::unique_ptr<redis_test_server> replica;
    std::vector<std::unique_ptr<redis_test_server>> sentinels;
};

TEST_F(redis_sentinel_test, locate_asks_the_sentinels_in_turn) {
    auto locator = redis_master_locator::create(loop.executor(), settings());
    auto [error, where] = locate(*locator);
    ASSERT_FALSE(error) << locator->last_error();
    EXPECT_EQ(where, master->endpoint());

    // The first sentinel gone: the next one answers.
    sentinels[0]->kill();
    auto fresh = redis_master_locator::create(loop.executor(), settings());
    const auto started = std::chrono::steady_clock::now();
    std::tie(error, where) = locate(*fresh);
    ASSERT_FALSE(error) << fresh->last_error();
    EXPECT_EQ(where, master->endpoint());
    std::printf("[ measure ] master located past a dead sentinel in %.1f ms\n", ms_since(started));

    auto unknown = redis_master_locator::create(loop.executor(), settings("nope"));
    std::tie(error, where) = locate(*unknown);
    EXPECT_EQ(error, redis_error::no_master);
    EXPECT_NE(unknown->last_error().find("does not know a master named 'nope'"), std::string::npos)
        << unknown->last_error();
    EXPECT_NE(unknown->last_error().find("Connection refused"), std::string::npos) << unknown->last_error();

    auto wrong_password = settings();
    wrong_password.password = "not-it";
    auto refused = redis_master_locator::create(loop.executor(), wrong_password);
    std::tie(error, where) = locate(*refused);
    EXPECT_EQ(error, redis_error::no_master);
    EXPECT_NE(refused->last_error().find("AUTH failed"), std::string::npos) << refused->last_error();
    EXPECT_EQ(refused->last_error().find("not-it"), std::string::npos);
}

TEST_F(redis_sentinel_test, follows_a_failover_after_kill_9_of_the_master) {
    auto locator = redis_master_locator::create(loop.executor(), settings());
    locator->start();
    auto connection = redis_connection::create(loop.executor(), client_options(locator));
    connection->start();
    auto subscriber = redis_subscriber::create(loop.executor(), client_options(locator));
    int resyncs = 0;
    std::vector<redis_message> messages;
    subscriber->subscribe("vb:events");
    subscriber->on_resync([&] { ++resyncs; });
    subscriber->on_message([&](const redis_message& message) { messages.push_back(message); });
    subscriber->start();

    ASSERT_FALSE(write_until_success(*connection, 5s).error);
    ASSERT_TRUE(loop.run_until([&] { return resyncs == 1; }, 5s));
    EXPECT_EQ(connection->connected_endpoint(), master->endpoint());
    EXPECT_EQ(subscriber->connected_endpoint(), master->endpoint());

    std::optional<std::chrono::steady_clock::time_point> switch_seen;
    locator->add_master_observer([&](const redis_endpoint&) { switch_seen = std::chrono::steady_clock::now(); });
    master->kill();
    const auto killed = std::chrono::steady_clock::now();
    const auto written = write_until_success(*connection, 20s);
    const auto written_at = std::chrono::steady_clock::now();
    ASSERT_FALSE(written.error || written.reply.is_error())
        << written.error.message() << " " << written.reply.describe() << " / " << connection->last_error();
    const double failover_ms = ms_since(killed);
    EXPECT_EQ(connection->connected_endpoint(), replica->endpoint());
    ASSERT_TRUE(loop.run_until([&] { return resyncs == 2; }, 5s)) << subscriber->last_error();
    EXPECT_EQ(subscriber->connected_endpoint(), replica->endpoint());
    ASSERT_TRUE(switch_seen.has_value());
    std::printf("[ measure ] kill -9 of the master to the first write on the new master: %.0f ms "
                "(down-after-milliseconds %d), of which %.1f ms after +switch-master reached the client; "
                "subscriber resynced at %.0f ms\n",
                failover_ms, down_after_ms,
                std::chrono::duration<double, std::milli>(written_at - *switch_seen).count(), ms_since(killed));
    EXPECT_LT(failover_ms, down_after_ms + 3000.0);

    EXPECT_EQ(replica->command({"PUBLISH", "vb:events", "on the new master"}).integer, 1);
    ASSERT_TRUE(loop.run_until([&] { return !messages.empty(); }, 3s));
    EXPECT_EQ(messages.back().payload, "on the new master");
    EXPECT_EQ(locator->last_known_master(), replica->endpoint());
}

TEST_F(redis_sentinel_test, readonly_means_find_the_master_again) {
    // No watch: only the READONLY reply and the ROLE check can tell the client.
    auto locator = redis_master_locator::create(loop.executor(), settings());
    auto connection = redis_connection::create(loop.executor(), client_options(locator));
    connection->start();
    ASSERT_FALSE(write_until_success(*connection, 5s).error);
    ASSERT_EQ(connection->connected_endpoint(), master->endpoint());

    // The master turns into a replica behind everyone's back (of a stray server no sentinel
    // watches), the way a demoted old master does.
    redis_test_server stray;
    master->command({"CONFIG", "SET", "masterauth", ""});
    master->command({"REPLICAOF", "127.0.0.1", std::to_string(stray.port())});
    std::vector<redis_reply> errors;
    auto refused = send_command(*connection, {"INCR", "writes"}, 300ms);
    ASSERT_TRUE(loop.run_until([&] { return refused->done(); }, 2s));
    EXPECT_TRUE(refused->reply.is_error("READONLY")) << refused->reply.describe();
    // The connection dropped itself and, asking the sentinels again, is told the same node,
    // which ROLE now shows to be a replica: it stays down rather than write to it.
    ASSERT_TRUE(loop.run_until([&] { return connection->last_error().find("ROLE says") != std::string::npos; }, 3s))
        << connection->last_error();
    EXPECT_FALSE(connection->is_up());

    // The node is master again: the client finds it by itself.
    master->command({"REPLICAOF", "NO", "ONE"});
    const auto written = write_until_success(*connection, 5s, &errors);
    EXPECT_FALSE(written.error || written.reply.is_error()) << written.reply.describe();
    EXPECT_EQ(connection->connected_endpoint(), master->endpoint());
    for (const auto& error : errors) ADD_FAILURE() << "a write reached a replica: " << error.describe();
}

TEST_F(redis_sentinel_test, a_forced_failover_is_followed_at_switch_master) {
    // SENTINEL FAILOVER (an operator's maintenance switch) leaves the old master running and
    // writable until Sentinel demotes it, about 8 s later: only +switch-master tells the client in time.
    auto locator = redis_master_locator::create(loop.executor(), settings());
    locator->start();
    auto connection = redis_connection::create(loop.executor(), client_options(locator));
    connection->start();
    ASSERT_FALSE(write_until_success(*connection, 5s).error);
    ASSERT_EQ(connection->connected_endpoint(), master->endpoint());

    const auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(sentinels[1]->command({"SENTINEL", "FAILOVER", "mymaster"}).is("OK"));
    ASSERT_TRUE(loop.run_until([&] { return connection->connected_endpoint() == replica->endpoint(); }, 5s))
        << connection->last_error();
    const double switched_ms = ms_since(started);
    const auto written = write_until_success(*connection, 5s);
    EXPECT_FALSE(written.error || written.reply.is_error()) << written.reply.describe();
    EXPECT_EQ(replica->command({"ROLE"}).elements.at(0).text, "master");
    std::printf("[ measure ] SENTINEL FAILOVER to the client connected to the new master: %.0f ms\n", switched_ms);
}

TEST_F(redis_sentinel_test, probe_goes_through_the_sentinels) {
    redis_url url;
    url.password = data_password;
    const auto ok = probe_redis(url, settings(), 1000ms);
    EXPECT_TRUE(ok.reachable) << ok.detail;
    EXPECT_NE(ok.detail.find(master->endpoint().to_string()), std::string::npos) << ok.detail;

    const auto unknown = probe_redis(url, settings("nope"), 1000ms);
    EXPECT_FALSE(unknown.reachable);
    EXPECT_NE(unknown.detail.find("does not know a master named 'nope'"), std::string::npos) << unknown.detail;
}

}  // namespace
}  // namespace voice_broker
