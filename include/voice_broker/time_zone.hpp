// time_zone: an IANA time zone (BUDGET_TIMEZONE) read from the system's zoneinfo files, so that
// budgets reset at local midnight and on the first of the local month.
//
// Debian 12's libstdc++ 12 has no std::chrono::tzdb (it came in GCC 14), so this reads the TZif
// files itself (RFC 8536, versions 1-4): the transitions, then the POSIX TZ rule in the footer
// for instants past the last one.  "UTC" (and "Etc/UTC", "Z") needs no file.  Loaded once at
// start-up; a plain value afterwards, so it is cheap to copy and safe to share read-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace voice_broker {

using sys_seconds = std::chrono::sys_seconds;
using local_seconds = std::chrono::local_seconds;

class time_zone {
public:
    static time_zone utc();

    // `name` like "Europe/Berlin" from `zoneinfo_dir` (TZDIR, usually /usr/share/zoneinfo).
    // The error names what is wrong (unknown zone, unsafe name, not a TZif file).
    static std::variant<time_zone, std::string> load(std::string_view name, const std::filesystem::path& zoneinfo_dir);
    // From the bytes of a TZif file (for tests).
    static std::variant<time_zone, std::string> from_tzif(std::string name, std::string_view bytes);

    // The system's zoneinfo folder: $TZDIR when set, else /usr/share/zoneinfo.
    static std::filesystem::path default_zoneinfo_dir();

    const std::string& name() const { return name_; }

    // Seconds east of UTC at instant t.
    std::chrono::seconds offset_at(sys_seconds t) const;
    local_seconds to_local(sys_seconds t) const { return local_seconds{(t + offset_at(t)).time_since_epoch()}; }

    // The first instant whose local time is at or after `local`.  For a local time skipped by a
    // spring-forward gap this is the end of the gap; for a repeated one, its first occurrence.
    sys_seconds first_instant_at_or_after(local_seconds local) const;

    // "+01:00" for an offset.
    static std::string format_offset(std::chrono::seconds offset);
    // "2026-12-02T00:00:00+01:00": instant t as a clock on the wall in this zone shows it.
    std::string format_local(sys_seconds t) const;

private:
    struct local_type {
        std::int32_t offset = 0;  // seconds east of UTC
        bool is_dst = false;
    };
    // A POSIX TZ rule, e.g. "CET-1CEST,M3.5.0,M10.5.0/3".
    struct rule_date {
        enum class kind { julian_no_leap, zero_based_day, month_week_day } form = kind::month_week_day;
        int day = 0;    // Jn: 1..365, n: 0..365, M: weekday 0..6 (Sunday = 0)
        int month = 0;  // M only
        int week = 0;   // M only, 1..5 (5 = last)
        std::int32_t time = 7200;  // seconds after local midnight, may be negative or beyond 24 h
    };
    struct posix_rule {
        std::int32_t std_offset = 0;  // seconds east of UTC
        bool has_dst = false;
        std::int32_t dst_offset = 0;
        rule_date start, end;
    };

    static std::optional<posix_rule> parse_posix(std::string_view text);
    // The instants at which the rule switches to DST and back in `year`.
    std::pair<sys_seconds, sys_seconds> rule_transitions(int year) const;
    std::chrono::seconds rule_offset_at(sys_seconds t) const;
    // (instant, offset from then on) for the changes in [from, to), after offset_at(from).
    std::vector<std::pair<sys_seconds, std::chrono::seconds>> changes_between(sys_seconds from, sys_seconds to) const;

    std::string name_;
    std::vector<std::int64_t> transitions_;  // UTC seconds, ascending
    std::vector<std::uint8_t> transition_types_;
    std::vector<local_type> types_;
    std::optional<posix_rule> rule_;  // the footer, for instants past the last transition
};

}  // namespace voice_broker
