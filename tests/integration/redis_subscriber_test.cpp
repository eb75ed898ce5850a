// redis_subscriber against a real redis-server: messages on channels and patterns, the resync
// notice after every (re)subscription, kill -9 and restart, and the probe that notices a
// silent (paused) server.
#include "redis_test_loop.hpp"
#include "redis_test_server.hpp"
#include "voice_broker/redis_subscriber.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using testing::redis_server_options;
using testing::redis_test_loop;
using testing::redis_test_server;
using testing::state_log;

class redis_subscriber_test : public ::testing::Test {
protected:
    std::shared_ptr<redis_subscriber> subscribe(const redis_url& url, std::chrono::milliseconds probe_interval = 2000ms) {
        redis_client_options options;
        options.url = url;
        options.connect_timeout = 300ms;
        options.reconnect_delay_min = 20ms;
        options.reconnect_delay_max = 200ms;
        options.subscriber_probe_interval = probe_interval;
        auto subscriber = redis_subscriber::create(loop.executor(), options);
        subscriber->on_message([this](const redis_message& message) { messages.push_back(message); });
        subscriber->on_resync([this] { ++resyncs; });
        subscriber->add_state_observer([this](redis_link_state state) { states.states.push_back(state); });
        return subscriber;
    }

    // PUBLISH through the test's own connection; the answer is how many subscribers got it.
    std::int64_t publish(redis_test_server& server, const std::string& channel, const std::string& payload) {
        return server.command({"PUBLISH", channel, payload}).integer;
    }

    bool wait_messages(std::size_t count) {
        return loop.run_until([&] { return messages.size() >= count; }, 3s);
    }

    redis_test_loop loop;
    std::vector<redis_message> messages;
    int resyncs = 0;
    state_log states;
};

TEST_F(redis_subscriber_test, receives_channels_and_patterns_after_one_resync) {
    redis_server_options options;
    options.unix_socket = true;
    options.password = "sub-pw";
    redis_test_server server(options);
    auto subscriber = subscribe(server.url());
    subscriber->subscribe("vb:events");
    subscriber->psubscribe("vb:instance:*");
    subscriber->start();
    ASSERT_TRUE(loop.run_until([&] { return resyncs == 1; }, 3s)) << subscriber->last_error();
    EXPECT_TRUE(subscriber->is_up());

    EXPECT_EQ(publish(server, "vb:events", "joined"), 1);
    EXPECT_EQ(publish(server, "vb:instance:7", std::string("bin\0ary", 7)), 1);
    EXPECT_EQ(publish(server, "other", "nobody"), 0);
    ASSERT_TRUE(wait_messages(2));
    EXPECT_EQ(messages[0].channel, "vb:events");
    EXPECT_EQ(messages[0].payload, "joined");
    EXPECT_EQ(messages[0].pattern, "");
    EXPECT_EQ(messages[1].channel, "vb:instance:7");
    EXPECT_EQ(messages[1].payload, std::string("bin\0ary", 7));
    EXPECT_EQ(messages[1].pattern, "vb:instance:*");

    // Added and removed while up.
    subscriber->subscribe("vb:late");
    // Nothing tells when Redis has registered one more channel: ask it, while the loop runs.
    ASSERT_TRUE(loop.run_until([&] { return publish(server, "vb:late", "x") == 1; }, 2s));
    subscriber->unsubscribe("vb:events");
    subscriber->punsubscribe("vb:instance:*");
    ASSERT_TRUE(loop.run_until(
        [&] { return publish(server, "vb:events", "gone") == 0 && publish(server, "vb:instance:1", "gone") == 0; }, 2s));
    loop.run_until([] { return false; }, 100ms);  // let any stray delivery surface
    for (const auto& message : messages) EXPECT_NE(message.payload, "gone");
    EXPECT_EQ(resyncs, 1);
}

TEST_F(redis_subscriber_test, kill_9_and_restart_resubscribes_and_asks_for_a_resync) {
    redis_test_server server;
    auto subscriber = subscribe(server.url());
    subscriber->subscribe("vb:events");
    subscriber->start();
    ASSERT_TRUE(loop.run_until([&] { return resyncs == 1; }, 3s));

    server.kill();
    ASSERT_TRUE(loop.run_until([&] { return states.count(redis_link_state::down) == 1; }, 3s));
    server.restart();
    const auto restarted = std::chrono::steady_clock::now();
    ASSERT_TRUE(loop.run_until([&] { return resyncs == 2; }, 5s)) << subscriber->last_error();
    std::printf("[ measure ] resubscribed %.1f ms after the restarted redis said READY\n",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - restarted).count());
    // Subscribed again on the server side (the resync came only once Redis confirmed it).
    EXPECT_EQ(publish(server, "vb:events", "after restart"), 1);
    ASSERT_TRUE(wait_messages(1));
    EXPECT_EQ(messages.back().payload, "after restart");
    EXPECT_EQ(states.count(redis_link_state::up), 2);
}

TEST_F(redis_subscriber_test, the_probe_notices_a_paused_server) {
    redis_test_server server;
    auto subscriber = subscribe(server.url(), 200ms);
    subscriber->subscribe("vb:events");
    subscriber->start();
    ASSERT_TRUE(loop.run_until([&] { return resyncs == 1; }, 3s));
    // An idle, healthy subscription stays up across several probes.
    EXPECT_FALSE(loop.run_until([&] { return states.count(redis_link_state::down) > 0; }, 1000ms));

    server.pause();
    const auto paused = std::chrono::steady_clock::now();
    ASSERT_TRUE(loop.run_until([&] { return states.count(redis_link_state::down) == 1; }, 3s));
    const double noticed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - paused).count();
    std::printf("[ measure ] a paused server noticed after %.1f ms (probe every 200 ms, answer within 300 ms)\n",
                noticed);
    EXPECT_LT(noticed, 200.0 + 300.0 + 200.0);
    EXPECT_NE(subscriber->last_error().find("probe"), std::string::npos) << subscriber->last_error();
    server.resume();
    ASSERT_TRUE(loop.run_until([&] { return resyncs == 2; }, 5s)) << subscriber->last_error();
    EXPECT_EQ(publish(server, "vb:events", "back"), 1);
}

TEST_F(redis_subscriber_test, close_stops_delivery) {
    redis_test_server server;
    auto subscriber = subscribe(server.url());
    subscriber->subscribe("vb:events");
    subscriber->start();
    ASSERT_TRUE(loop.run_until([&] { return resyncs == 1; }, 3s));
    subscriber->close();
    EXPECT_EQ(subscriber->state(), redis_link_state::closed);
    EXPECT_TRUE(loop.run_until([&] { return publish(server, "vb:events", "x") == 0; }, 2s));
    loop.drain();
    EXPECT_TRUE(messages.empty());
}

}  // namespace
}  // namespace voice_broker
