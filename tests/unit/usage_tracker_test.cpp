// Unit tests for usage_tracker: today's sessions, minutes and cost, reset at midnight UTC.
#include "voice_broker/usage_tracker.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using wall = std::chrono::system_clock::time_point;

// 2026-11-24T00:00:00Z
const wall midnight = wall{} + std::chrono::seconds{1795478400};

TEST(usage_tracker, counts_sessions_minutes_and_cost) {
    usage_tracker usage(0.06);
    usage.session_started(midnight + 1h);
    usage.session_started(midnight + 2h);
    usage.session_ended(midnight + 2h, 90s);
    const auto today = usage.today(midnight + 3h, 30s);
    EXPECT_EQ(today.sessions_started, 2u);
    EXPECT_EQ(today.sessions_completed, 1u);
    EXPECT_DOUBLE_EQ(today.minutes_used, 2.0) << "90 s ended plus 30 s running";
    EXPECT_DOUBLE_EQ(today.estimated_cost_usd, 0.12);
}

TEST(usage_tracker, rounds_to_cents_and_hundredths_of_a_minute) {
    usage_tracker usage(0.06);
    usage.session_ended(midnight + 1h, 61s);  // 1.01666 minutes
    const auto today = usage.today(midnight + 1h, 0s);
    EXPECT_DOUBLE_EQ(today.minutes_used, 1.02);
    EXPECT_DOUBLE_EQ(today.estimated_cost_usd, 0.06);
}

TEST(usage_tracker, starts_over_at_midnight_utc) {
    usage_tracker usage(0.06);
    usage.session_started(midnight + 24h - 2s);
    usage.session_ended(midnight + 24h - 1s, 60s);
    const auto before = usage.today(midnight + 24h - 1ms, 0s);
    EXPECT_EQ(before.sessions_started, 1u);
    EXPECT_DOUBLE_EQ(before.minutes_used, 1.0);

    const auto after = usage.today(midnight + 24h, 0s);
    EXPECT_EQ(after.sessions_started, 0u);
    EXPECT_EQ(after.sessions_completed, 0u);
    EXPECT_DOUBLE_EQ(after.minutes_used, 0.0);

    usage.session_started(midnight + 25h);
    EXPECT_EQ(usage.today(midnight + 26h, 0s).sessions_started, 1u);
}

TEST(usage_tracker, a_new_price_applies_to_the_estimate) {
    usage_tracker usage(0.06);
    usage.session_ended(midnight + 1h, 10min);
    usage.set_cost_per_minute(0.5);
    EXPECT_DOUBLE_EQ(usage.today(midnight + 1h, 0s).estimated_cost_usd, 5.0);
}

}  // namespace
}  // namespace voice_broker
