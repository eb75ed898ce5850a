// Unit tests for auth_throttle: how admin-token guessing is slowed down, per address.
#include "voice_broker/auth_throttle.hpp"

#include <gtest/gtest.h>

#include <string>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;

const steady_time t0 = steady_time{} + std::chrono::hours{1000};

TEST(auth_throttle, refuses_an_address_after_max_failures_within_the_window) {
    auth_throttle throttle(5, 60s);
    const std::string a = "203.0.113.1";
    for (int i = 0; i < 4; ++i) {
        throttle.record_failure(a, t0 + seconds{i});
        EXPECT_EQ(throttle.retry_after(a, t0 + seconds{i}), 0) << "after " << i + 1 << " failures";
    }
    throttle.record_failure(a, t0 + 4s);
    EXPECT_EQ(throttle.retry_after(a, t0 + 4s), 56) << "until the first failure leaves the window";
    EXPECT_EQ(throttle.retry_after(a, t0 + 4s + 500ms), 56) << "rounded up";
    EXPECT_EQ(throttle.retry_after(a, t0 + 59s), 1);
    EXPECT_EQ(throttle.retry_after(a, t0 + 60s), 0) << "the oldest failure has left the window";
}

TEST(auth_throttle, addresses_are_independent) {
    auth_throttle throttle(2, 60s);
    throttle.record_failure("a", t0);
    throttle.record_failure("a", t0);
    EXPECT_GT(throttle.retry_after("a", t0), 0);
    EXPECT_EQ(throttle.retry_after("b", t0), 0);
    EXPECT_EQ(throttle.retry_after("", t0), 0);
}

TEST(auth_throttle, keeps_refusing_while_failures_continue) {
    auth_throttle throttle(3, 10s);
    for (int i = 0; i < 3; ++i) throttle.record_failure("a", t0 + seconds{i});
    EXPECT_EQ(throttle.retry_after("a", t0 + 2s), 8);
    throttle.record_failure("a", t0 + 5s);  // a guess while refused still counts
    EXPECT_EQ(throttle.retry_after("a", t0 + 10s), 1) << "failures at 1 s, 2 s and 5 s remain";
    EXPECT_EQ(throttle.retry_after("a", t0 + 11s), 0) << "only two left in the window";
}

TEST(auth_throttle, a_flood_of_addresses_does_not_grow_without_bound_or_crash) {
    auth_throttle throttle(5, 60s);
    for (int i = 0; i < 25000; ++i) throttle.record_failure("addr-" + std::to_string(i), t0 + milliseconds{i});
    for (int i = 0; i < 5; ++i) throttle.record_failure("attacker", t0 + 30s);
    EXPECT_GT(throttle.retry_after("attacker", t0 + 30s), 0);
}

}  // namespace
}  // namespace voice_broker
