// Unit tests for fair_use: the one mechanism behind every per-address and per-ticket limit.
#include "voice_broker/fair_use.hpp"

#include <gtest/gtest.h>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
const steady_time t0 = steady_time{} + std::chrono::hours{1000};

TEST(keyed_quota, holds_up_to_the_limit_per_key_and_gives_back) {
    keyed_quota q(2);
    EXPECT_TRUE(q.try_take("a"));
    EXPECT_TRUE(q.try_take("a"));
    EXPECT_FALSE(q.try_take("a")) << "a third for the same key";
    EXPECT_TRUE(q.try_take("b")) << "another key has its own quota";
    q.give_back("a");
    EXPECT_TRUE(q.try_take("a"));
    EXPECT_EQ(q.held("a"), 2u);
}

TEST(keyed_quota, keys_that_hold_nothing_are_forgotten) {
    keyed_quota q(1);
    for (int i = 0; i < 1000; ++i) {
        const auto key = "k" + std::to_string(i);
        ASSERT_TRUE(q.try_take(key));
        q.give_back(key);
    }
    EXPECT_EQ(q.keys(), 0u);
    EXPECT_FALSE(q.try_take("x") && q.try_take("x")) << "a refused take leaves nothing behind";
    EXPECT_EQ(q.keys(), 1u);
}

TEST(keyed_quota, zero_means_no_limit) {
    keyed_quota q(0);
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(q.try_take("a"));
}

TEST(keyed_rate, allows_the_limit_per_window_then_says_when) {
    keyed_rate r(3, 60s);
    EXPECT_EQ(r.take("a", t0), 0);
    EXPECT_EQ(r.take("a", t0 + 10s), 0);
    EXPECT_EQ(r.take("a", t0 + 20s), 0);
    EXPECT_EQ(r.take("a", t0 + 30s), 30) << "the first of the three leaves the window at +60 s";
    EXPECT_EQ(r.take("b", t0 + 30s), 0) << "another key";
    EXPECT_EQ(r.take("a", t0 + 60s), 0) << "a refused attempt is not counted";
    EXPECT_EQ(r.take("a", t0 + 61s), 9);
}

TEST(keyed_rate, zero_means_no_limit) {
    keyed_rate r(0);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(r.take("a", t0), 0);
    EXPECT_EQ(r.keys(), 0u);
}

}  // namespace
}  // namespace voice_broker
