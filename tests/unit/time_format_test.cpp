// Unit tests for the broker's time helpers: ISO 8601 display and whole seconds left.
#include "voice_broker/time.hpp"

#include <gtest/gtest.h>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using wall = std::chrono::system_clock::time_point;

const steady_time t0 = steady_time{} + std::chrono::hours{1000};

TEST(format_iso8601, utc_with_milliseconds) {
    EXPECT_EQ(format_iso8601(wall{}), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_iso8601(wall{} + std::chrono::seconds{1795514400} + 123ms), "2026-11-24T10:00:00.123Z");
    EXPECT_EQ(format_iso8601(wall{} + std::chrono::seconds{951782400}), "2000-02-29T00:00:00.000Z");
    EXPECT_EQ(format_iso8601(wall{} - 1ms), "1969-12-31T23:59:59.999Z");
    EXPECT_EQ(format_iso8601(wall{} + 999999us), "1970-01-01T00:00:00.999Z") << "truncated, not rounded";
}

TEST(seconds_until, rounds_up_and_never_goes_negative) {
    EXPECT_EQ(seconds_until(t0, t0), 0);
    EXPECT_EQ(seconds_until(t0, t0 - 5s), 0);
    EXPECT_EQ(seconds_until(t0, t0 + 1ms), 1);
    EXPECT_EQ(seconds_until(t0, t0 + 1s), 1);
    EXPECT_EQ(seconds_until(t0, t0 + 1001ms), 2);
    EXPECT_EQ(seconds_until(t0, t0 + 300s), 300);
}

// Real clocks tick in nanoseconds: a fraction of a millisecond still counts as a second begun.
TEST(seconds_until, rounds_up_below_a_millisecond_too) {
    EXPECT_EQ(seconds_until(t0, t0 + 1000500us), 2);
    EXPECT_EQ(seconds_until(t0, t0 + 1ns), 1);
}

TEST(wall_clock_mapping, maps_steady_instants_around_the_anchor) {
    const wall anchor = wall{} + std::chrono::seconds{1795514400};
    const wall_clock_mapping clock(t0, anchor);
    EXPECT_EQ(clock.to_wall(t0), anchor);
    EXPECT_EQ(clock.to_wall(t0 + 90s), anchor + 90s);
    EXPECT_EQ(clock.to_wall(t0 - 1500ms), anchor - 1500ms);
}

}  // namespace
}  // namespace voice_broker
