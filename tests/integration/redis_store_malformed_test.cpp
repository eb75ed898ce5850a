// What the Redis store does with what it cannot believe, against a real redis-server:
//   - an answer whose clock is not believable (the script's test clock pushed 160 years ahead)
//     is store_error::unavailable, counted as a store error, and the store works again once
//     Redis's clock is sane;
//   - a batch on the events channel that is malformed (a time that is a string) or that cannot
//     follow the mirror (a new entry below the queue's last) is dropped: the store reads the
//     state again (a resync) and its mirror stays what Redis says.
#include "redis_store.hpp"
#include "redis_test_loop.hpp"
#include "redis_test_server.hpp"
#include "voice_broker/metrics.hpp"

#include <gtest/gtest.h>

namespace voice_broker::testing {
namespace {

using namespace std::chrono_literals;

struct resync_count final : store_listener {
    void on_events(const std::vector<broker_event>&, steady_time, bool) override {}
    void on_hang_ups(std::vector<std::string>) override {}
    void on_resync() override { ++resyncs; }
    int resyncs = 0;
};

class redis_store_malformed : public ::testing::Test {
protected:
    void SetUp() override {
        session_limits l;
        l.max_concurrent_users = 1;
        l.max_queue_length = 10;
        l.session_duration = 60s;
        l.heartbeat_timeout = 30s;
        redis_store_options options;
        options.settings.redis_url = "redis://127.0.0.1:" + std::to_string(server.port()) + "/0";
        options.settings.key_prefix = prefix;
        options.settings.instance_id = "malformed";
        options.touch_period = 200ms;
        store = make_redis_store(loop.executor(), l, [] { return std::chrono::steady_clock::now(); }, options, counters);
        store->set_listener(&listener);
        ASSERT_TRUE(loop.run_until([&] { return store->available() && listener.resyncs > 0; }, 5s));
    }

    std::pair<store_error, join_outcome> join(const std::string& ticket) {
        std::optional<std::pair<store_error, join_outcome>> out;
        store->join(join_request{ticket, std::nullopt, "203.0.113.9"}, [&](store_error e, join_outcome o) { out.emplace(e, o); });
        EXPECT_TRUE(loop.run_until([&] { return out.has_value(); }, 5s));
        return out.value_or(std::pair{store_error::unavailable, join_outcome{}});
    }

    std::string key(const std::string& k) const { return "{" + prefix + "}:" + k; }
    std::int64_t redis_ms() {
        const auto t = server.command({"TIME"});
        return std::stoll(t.elements.at(0).text) * 1000 + std::stoll(t.elements.at(1).text) / 1000;
    }

    std::string prefix = "malformed-" + std::to_string(::getpid());
    redis_test_server server;
    redis_test_loop loop;
    metrics counters;
    resync_count listener;
    std::unique_ptr<session_store> store;
};

TEST_F(redis_store_malformed, an_answer_with_an_unbelievable_clock_is_unavailable_until_the_clock_is_sane) {
    server.command({"SET", key("clock"), std::to_string(160LL * 366 * 24 * 3600 * 1000)});
    const auto errors_before = counters.store_errors.load();
    EXPECT_EQ(join("tk_far_future").first, store_error::unavailable);
    EXPECT_GT(counters.store_errors.load(), errors_before);

    server.command({"DEL", key("clock")});
    const auto [error, outcome] = join("tk_sane");
    EXPECT_EQ(error, store_error::none);
    EXPECT_EQ(outcome.what, join_outcome::kind::joined);
}

TEST_F(redis_store_malformed, a_malformed_batch_is_dropped_and_the_state_read_again) {
    ASSERT_EQ(join("tk_holder").first, store_error::none);
    ASSERT_EQ(join("tk_waiter").first, store_error::none);
    ASSERT_TRUE(loop.run_until([&] { return store->queue_length() == 1 && store->active_count() == 1; }, 5s));

    auto resyncs = listener.resyncs;
    auto errors = counters.store_errors.load();
    server.command({"PUBLISH", key("events"), R"({"s":1,"t":"1795514400000","ev":[]})"});
    ASSERT_TRUE(loop.run_until([&] { return listener.resyncs > resyncs; }, 5s));
    EXPECT_GT(counters.store_errors.load(), errors);
    EXPECT_EQ(store->queue_length(), 1u);

    // The next batch in order, well formed, but queueing an id below the queue's last.
    resyncs = listener.resyncs;
    errors = counters.store_errors.load();
    const auto next = std::stoll(server.command({"GET", key("ev")}).text) + 1;
    server.command({"PUBLISH", key("events"),
                    R"({"s":)" + std::to_string(next) + R"(,"t":)" + std::to_string(redis_ms()) + R"(,"ev":[{"k":"q+","id":1}]})"});
    ASSERT_TRUE(loop.run_until([&] { return listener.resyncs > resyncs; }, 5s));
    EXPECT_GT(counters.store_errors.load(), errors);
    EXPECT_EQ(store->queue_length(), 1u);
    EXPECT_EQ(store->active_count(), 1u);

    // And the store goes on: a third visitor queues behind the second.
    EXPECT_EQ(join("tk_third").first, store_error::none);
    EXPECT_TRUE(loop.run_until([&] { return store->queue_length() == 2; }, 5s));
}

}  // namespace
}  // namespace voice_broker::testing
