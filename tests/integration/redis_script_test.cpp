// redis_script against a real redis-server: EVALSHA, the NOSCRIPT fallback (first call, after
// SCRIPT FLUSH), compile errors, and WAIT behind a script with and without a replica.
#include "redis_test_loop.hpp"
#include "redis_test_server.hpp"
#include "voice_broker/redis_connection.hpp"
#include "voice_broker/redis_error.hpp"
#include "voice_broker/redis_script.hpp"

#include <gtest/gtest.h>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using testing::redis_server_options;
using testing::redis_test_loop;
using testing::redis_test_server;

const char* const increment_script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";

struct script_outcome {
    int calls = 0;
    std::error_code error;
    redis_reply reply;
    std::int64_t acknowledged = -2;
};

class redis_script_test : public ::testing::Test {
protected:
    std::shared_ptr<redis_connection> connect(const redis_url& url) {
        redis_client_options options;
        options.url = url;
        auto connection = redis_connection::create(loop.executor(), options);
        connection->start();
        return connection;
    }

    script_outcome run(const redis_script& script, redis_connection& connection, std::vector<std::string> keys,
                       std::vector<std::string> args) {
        auto outcome = std::make_shared<script_outcome>();
        script.run(connection, std::move(keys), std::move(args), 2s, [outcome](std::error_code ec, redis_reply reply) {
            ++outcome->calls;
            outcome->error = ec;
            outcome->reply = std::move(reply);
        });
        loop.run_until([&] { return outcome->calls > 0; }, 5s);
        loop.drain();
        return *outcome;
    }

    script_outcome run_replicated(const redis_script& script, redis_connection& connection, int replicas,
                                  std::chrono::milliseconds wait_timeout) {
        auto outcome = std::make_shared<script_outcome>();
        script.run_replicated(connection, {"counter"}, {"1"}, replicas, wait_timeout, wait_timeout + 2s,
                              [outcome](std::error_code ec, redis_reply reply, std::int64_t acknowledged) {
                                  ++outcome->calls;
                                  outcome->error = ec;
                                  outcome->reply = std::move(reply);
                                  outcome->acknowledged = acknowledged;
                              });
        loop.run_until([&] { return outcome->calls > 0; }, 10s);
        loop.drain();
        return *outcome;
    }

    // How often Redis ran `command` (INFO commandstats).
    static long calls_of(redis_test_server& server, const std::string& command) {
        const auto info = server.command({"INFO", "commandstats"}).text;
        const auto at = info.find("cmdstat_" + command + ":calls=");
        if (at == std::string::npos) return 0;
        return std::stol(info.substr(at + 8 + command.size() + 7));
    }

    redis_test_loop loop;
};

TEST_F(redis_script_test, sha1_is_the_one_redis_computes) {
    redis_test_server server;
    const redis_script script(increment_script);
    EXPECT_EQ(server.command({"SCRIPT", "LOAD", increment_script}).text, script.sha1());
}

TEST_F(redis_script_test, loads_on_noscript_then_runs_by_sha_alone) {
    redis_test_server server;
    auto connection = connect(server.url());
    const redis_script script(increment_script);

    auto first = run(script, *connection, {"counter"}, {"5"});
    EXPECT_EQ(first.calls, 1);
    EXPECT_FALSE(first.error);
    EXPECT_EQ(first.reply, redis_reply::make_integer(5));  // ran once: NOSCRIPT, load, run
    EXPECT_EQ(calls_of(server, "script|load"), 1);

    EXPECT_EQ(run(script, *connection, {"counter"}, {"2"}).reply, redis_reply::make_integer(7));
    EXPECT_EQ(calls_of(server, "script|load"), 1);
    EXPECT_EQ(calls_of(server, "evalsha"), 3);  // the one that got NOSCRIPT, its retry, the second call

    server.command({"SCRIPT", "FLUSH"});
    EXPECT_EQ(run(script, *connection, {"counter"}, {"1"}).reply, redis_reply::make_integer(8));
    EXPECT_EQ(calls_of(server, "script|load"), 2);
}

TEST_F(redis_script_test, errors_come_back_as_replies) {
    redis_test_server server;
    auto connection = connect(server.url());
    const auto broken = run(redis_script("return redis.call("), *connection, {}, {});
    EXPECT_EQ(broken.calls, 1);
    EXPECT_FALSE(broken.error);
    EXPECT_TRUE(broken.reply.is_error()) << broken.reply.describe();
    EXPECT_NE(broken.reply.text.find("compiling"), std::string::npos) << broken.reply.describe();

    const auto refused = run(redis_script("return redis.error_reply('BUSYSLOT no slot free')"), *connection, {}, {});
    EXPECT_TRUE(refused.reply.is_error("BUSYSLOT")) << refused.reply.describe();
}

TEST_F(redis_script_test, wait_reports_the_replicas_that_hold_the_write) {
    redis_test_server master;
    redis_server_options replica_options;
    replica_options.replica_of = master.port();
    redis_test_server replica(replica_options);
    replica.wait_for_sync(5s);
    auto connection = connect(master.url());
    const redis_script script(increment_script);

    const auto replicated = run_replicated(script, *connection, 1, 1000ms);
    EXPECT_EQ(replicated.calls, 1);
    EXPECT_FALSE(replicated.error);
    EXPECT_EQ(replicated.reply, redis_reply::make_integer(1));
    EXPECT_EQ(replicated.acknowledged, 1);
    EXPECT_EQ(replica.command({"GET", "counter"}).text, "1");

    replica.kill();
    const auto started = std::chrono::steady_clock::now();
    const auto unreplicated = run_replicated(script, *connection, 1, 200ms);
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(unreplicated.reply, redis_reply::make_integer(2));
    EXPECT_EQ(unreplicated.acknowledged, 0);
    EXPECT_GE(took, 190ms);  // WAIT held on for its timeout

    const auto failed = run(redis_script("return redis.error_reply('NOPE not today')"), *connection, {}, {});
    EXPECT_TRUE(failed.reply.is_error("NOPE")) << failed.error.message() << " " << failed.reply.describe();
}

}  // namespace
}  // namespace voice_broker
