// usage_tracker: today's sessions and minutes, for the operator's spend estimate.  No I/O: it is
// told the wall-clock time of each start and end, and resets at midnight UTC.
#pragma once

#include <chrono>
#include <cstdint>

namespace voice_broker {

struct usage_today {
    std::uint64_t sessions_started = 0;
    std::uint64_t sessions_completed = 0;
    double minutes_used = 0;  // ended sessions plus the running ones so far
    double estimated_cost_usd = 0;
};

// The same figures from counts kept elsewhere (a shared store): `talked` of the completed sessions
// plus `running` of those still going.
usage_today usage_from(std::uint64_t started, std::uint64_t completed, std::chrono::milliseconds talked,
                       std::chrono::milliseconds running, double cost_per_minute_usd);

class usage_tracker {
public:
    explicit usage_tracker(double cost_per_minute_usd) : cost_per_minute_(cost_per_minute_usd) {}

    void set_cost_per_minute(double usd) { cost_per_minute_ = usd; }
    void session_started(std::chrono::system_clock::time_point when);
    void session_ended(std::chrono::system_clock::time_point when, std::chrono::milliseconds talked);

    // `running` is the talk time so far of sessions still going.
    usage_today today(std::chrono::system_clock::time_point now, std::chrono::milliseconds running);

private:
    void roll(std::chrono::system_clock::time_point now);

    double cost_per_minute_;
    std::int64_t day_ = -1;  // days since the epoch, UTC
    std::uint64_t started_ = 0;
    std::uint64_t completed_ = 0;
    std::chrono::milliseconds talked_{0};
};

}  // namespace voice_broker
