// Unit tests for the broker's time helpers: ISO 8601 display and whole seconds left.
#include "voice_broker/time.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <ctime>

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

// The digits are written by hand: they must match the C library's calendar everywhere, leap
// days and the ends of months, years and centuries included.
TEST(format_iso8601, matches_gmtime_from_1900_to_2250) {
    std::uint64_t state = 0x9e3779b97f4a7c15ull;
    const auto next = [&state] {  // splitmix64: the same sweep every run
        state += 0x9e3779b97f4a7c15ull;
        auto z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    for (int i = 0; i < 20000; ++i) {
        // 1900-01-01 .. 2250-01-01 in milliseconds (system_clock counts nanoseconds: up to 2262)
        const std::int64_t ms = -2208988800000ll + static_cast<std::int64_t>(next() % ((8835955200ull + 2208988800ull) * 1000));
        std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        const auto millis = static_cast<int>(ms - static_cast<std::int64_t>(secs) * 1000);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char want[64];
        std::snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
        ASSERT_EQ(format_iso8601(wall{} + std::chrono::milliseconds{ms}), want) << ms;
    }
    EXPECT_EQ(format_iso8601(wall{} + std::chrono::seconds{4107542399}), "2100-02-28T23:59:59.000Z");
    EXPECT_EQ(format_iso8601(wall{} + std::chrono::seconds{4107542400}), "2100-03-01T00:00:00.000Z") << "2100 is no leap year";
    EXPECT_EQ(format_iso8601(wall{} + std::chrono::seconds{1798761599} + 999ms), "2026-12-31T23:59:59.999Z");
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
