#include "voice_broker/time.hpp"

#include <cstdio>
#include <ctime>

namespace voice_broker {

std::string format_iso8601(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    int millis = static_cast<int>(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return buf;
}

std::int64_t seconds_until(steady_time now, steady_time t) {
    if (t <= now) return 0;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t - now).count();
    return (ns + 999'999'999) / 1'000'000'000;
}

}  // namespace voice_broker
