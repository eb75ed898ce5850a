// The broker's notion of time.  Deadlines use a monotonic clock; wall-clock time only appears
// when a time is shown to a person (ISO 8601), through wall_clock_mapping.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace voice_broker {

using steady_time = std::chrono::steady_clock::time_point;
using seconds = std::chrono::seconds;
using milliseconds = std::chrono::milliseconds;

// Maps monotonic instants to wall-clock ones, anchored once so that shown times never jump.
class wall_clock_mapping {
public:
    wall_clock_mapping(steady_time steady_anchor, std::chrono::system_clock::time_point wall_anchor)
        : steady_anchor_(steady_anchor), wall_anchor_(wall_anchor) {}

    static wall_clock_mapping now() {
        return {std::chrono::steady_clock::now(), std::chrono::system_clock::now()};
    }

    std::chrono::system_clock::time_point to_wall(steady_time t) const {
        return wall_anchor_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(t - steady_anchor_);
    }
    // The inverse: when the steady clock reaches a wall-clock instant (a budget's reset).
    steady_time to_steady(std::chrono::system_clock::time_point t) const {
        return steady_anchor_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(t - wall_anchor_);
    }

private:
    steady_time steady_anchor_;
    std::chrono::system_clock::time_point wall_anchor_;
};

// "2026-11-24T10:15:00.123Z"
std::string format_iso8601(std::chrono::system_clock::time_point t);

// Whole seconds from now until t, rounded up, never negative.
std::int64_t seconds_until(steady_time now, steady_time t);

}  // namespace voice_broker
