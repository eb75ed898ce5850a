#include "voice_broker/usage_tracker.hpp"

#include <cmath>

namespace voice_broker {

void usage_tracker::roll(std::chrono::system_clock::time_point now) {
    const auto day = std::chrono::duration_cast<std::chrono::days>(now.time_since_epoch()).count();
    if (day != day_) {
        day_ = day;
        started_ = 0;
        completed_ = 0;
        talked_ = std::chrono::milliseconds{0};
    }
}

void usage_tracker::session_started(std::chrono::system_clock::time_point when) {
    roll(when);
    ++started_;
}

void usage_tracker::session_ended(std::chrono::system_clock::time_point when, std::chrono::milliseconds talked) {
    roll(when);
    ++completed_;
    talked_ += talked;
}

usage_today usage_from(std::uint64_t started, std::uint64_t completed, std::chrono::milliseconds talked,
                       std::chrono::milliseconds running, double cost_per_minute_usd) {
    usage_today out;
    out.sessions_started = started;
    out.sessions_completed = completed;
    const double minutes = static_cast<double>((talked + running).count()) / 60000.0;
    out.minutes_used = std::round(minutes * 100) / 100;
    out.estimated_cost_usd = std::round(minutes * cost_per_minute_usd * 100) / 100;
    return out;
}

usage_today usage_tracker::today(std::chrono::system_clock::time_point now, std::chrono::milliseconds running) {
    roll(now);
    return usage_from(started_, completed_, talked_, running, cost_per_minute_);
}

}  // namespace voice_broker
