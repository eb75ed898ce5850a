#include "voice_broker/time.hpp"

#include <chrono>
#include <cstdio>

namespace voice_broker {

std::string format_iso8601(std::chrono::system_clock::time_point t) {
    // Every status document carries two of these and every log line one: digits by hand from
    // the civil calendar, not gmtime_r + snprintf (a tenth of an access-log line's cost).
    using namespace std::chrono;
    const auto at = floor<milliseconds>(t);  // truncated, not rounded; before 1970 too
    const auto day = floor<days>(at);
    const year_month_day date{day};
    const hh_mm_ss time{at - day};
    const int year = static_cast<int>(date.year());
    const auto month = static_cast<unsigned>(date.month()), mday = static_cast<unsigned>(date.day());
    const auto hour = static_cast<unsigned>(time.hours().count()), minute = static_cast<unsigned>(time.minutes().count());
    const auto second = static_cast<unsigned>(time.seconds().count()), milli = static_cast<unsigned>(time.subseconds().count());
    if (year < 0 || year > 9999) {  // no real instant; printf's widths, as before
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", year, month, mday, hour, minute, second, milli);
        return buf;
    }
    std::string out(24, '\0');  // YYYY-MM-DDTHH:MM:SS.mmmZ
    char* p = out.data();
    const auto put = [&p](unsigned value, int width, char after) {
        for (int i = width - 1; i >= 0; --i, value /= 10) p[i] = static_cast<char>('0' + value % 10);
        p += width;
        *p++ = after;
    };
    put(static_cast<unsigned>(year), 4, '-');
    put(month, 2, '-');
    put(mday, 2, 'T');
    put(hour, 2, ':');
    put(minute, 2, ':');
    put(second, 2, '.');
    put(milli, 3, 'Z');
    return out;
}

std::int64_t seconds_until(steady_time now, steady_time t) {
    if (t <= now) return 0;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t - now).count();
    return (ns + 999'999'999) / 1'000'000'000;
}

}  // namespace voice_broker
