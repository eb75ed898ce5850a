// Unit tests for time_zone: offsets and local midnights from the system's zoneinfo (tzdata),
// across DST days in both hemispheres, a zone whose midnight is skipped or repeated (Chile),
// years past the file's last transition (the POSIX rule), and refused names.  The expected
// instants were read from `zdump -v` of the same files.
#include "voice_broker/time_zone.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace voice_broker {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

const std::filesystem::path zoneinfo = "/usr/share/zoneinfo";

sys_seconds utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
    return sys_days{year{y} / month{m} / day{d}} + hours{hh} + minutes{mm} + seconds{ss};
}
local_seconds local(int y, unsigned m, unsigned d, int hh = 0, int mm = 0) {
    return local_days{year{y} / month{m} / day{d}} + hours{hh} + minutes{mm};
}

time_zone zone(const char* name) {
    auto z = time_zone::load(name, zoneinfo);
    if (auto* why = std::get_if<std::string>(&z)) {
        ADD_FAILURE() << name << " " << *why;
        return time_zone::utc();
    }
    return std::get<time_zone>(z);
}

bool have_tzdata() { return std::filesystem::exists(zoneinfo / "Europe/Berlin"); }

#define NEED_TZDATA() \
    if (!have_tzdata()) GTEST_SKIP() << "tzdata is not installed (apt-get install tzdata)"

TEST(time_zone, utc_needs_no_file) {
    for (const char* name : {"UTC", "Etc/UTC", "Z"}) {
        auto z = time_zone::load(name, "/nonexistent");
        ASSERT_TRUE(std::holds_alternative<time_zone>(z)) << name;
        EXPECT_EQ(std::get<time_zone>(z).offset_at(utc(2026, 7, 1)), 0s);
        EXPECT_EQ(std::get<time_zone>(z).first_instant_at_or_after(local(2026, 7, 1)), utc(2026, 7, 1));
    }
}

TEST(time_zone, berlin_offsets_around_both_changes) {
    NEED_TZDATA();
    const auto berlin = zone("Europe/Berlin");
    EXPECT_EQ(berlin.offset_at(utc(2026, 3, 29, 0, 59, 59)), 1h);
    EXPECT_EQ(berlin.offset_at(utc(2026, 3, 29, 1)), 2h);
    EXPECT_EQ(berlin.offset_at(utc(2026, 10, 25, 0, 59, 59)), 2h);
    EXPECT_EQ(berlin.offset_at(utc(2026, 10, 25, 1)), 1h);
    EXPECT_EQ(berlin.to_local(utc(2026, 12, 1, 15, 12)), local(2026, 12, 1, 16, 12));
}

TEST(time_zone, the_spring_forward_day_has_23_hours_and_the_fall_back_day_25) {
    NEED_TZDATA();
    const auto berlin = zone("Europe/Berlin");
    const auto mar29 = berlin.first_instant_at_or_after(local(2026, 3, 29));
    const auto mar30 = berlin.first_instant_at_or_after(local(2026, 3, 30));
    EXPECT_EQ(mar29, utc(2026, 3, 28, 23));
    EXPECT_EQ(mar30, utc(2026, 3, 29, 22));
    EXPECT_EQ(mar30 - mar29, 23h);
    const auto oct25 = berlin.first_instant_at_or_after(local(2026, 10, 25));
    const auto oct26 = berlin.first_instant_at_or_after(local(2026, 10, 26));
    EXPECT_EQ(oct25, utc(2026, 10, 24, 22));
    EXPECT_EQ(oct26 - oct25, 25h);
    // Inside the gap: 02:30 does not exist on March 29; the first instant after it is 03:00 CEST.
    EXPECT_EQ(berlin.first_instant_at_or_after(local(2026, 3, 29, 2, 30)), utc(2026, 3, 29, 1));
    // Repeated: 02:30 on October 25 happens twice; the first is 00:30Z.
    EXPECT_EQ(berlin.first_instant_at_or_after(local(2026, 10, 25, 2, 30)), utc(2026, 10, 25, 0, 30));
}

TEST(time_zone, southern_hemisphere_dst_runs_across_the_new_year) {
    NEED_TZDATA();
    const auto sydney = zone("Australia/Sydney");
    EXPECT_EQ(sydney.offset_at(utc(2026, 1, 15)), 11h);
    EXPECT_EQ(sydney.offset_at(utc(2026, 4, 4, 16)), 10h);
    EXPECT_EQ(sydney.offset_at(utc(2026, 7, 1)), 10h);
    EXPECT_EQ(sydney.offset_at(utc(2026, 10, 3, 16)), 11h);
    const auto apr5 = sydney.first_instant_at_or_after(local(2026, 4, 5));
    const auto apr6 = sydney.first_instant_at_or_after(local(2026, 4, 6));
    EXPECT_EQ(apr5, utc(2026, 4, 4, 13));
    EXPECT_EQ(apr6 - apr5, 25h);
    // The month of January begins at 13:00Z on December 31 (AEDT, +11).
    EXPECT_EQ(sydney.first_instant_at_or_after(local(2027, 1, 1)), utc(2026, 12, 31, 13));
}

TEST(time_zone, a_skipped_midnight_starts_the_day_at_the_end_of_the_gap) {
    NEED_TZDATA();
    // Chile moves its clocks at 24:00: on 2026-09-06 local midnight does not exist, and on
    // 2026-04-05 midnight comes twice (the day before lasts 25 hours).
    const auto santiago = zone("America/Santiago");
    EXPECT_EQ(santiago.first_instant_at_or_after(local(2026, 9, 6)), utc(2026, 9, 6, 4)) << "01:00 -03";
    EXPECT_EQ(santiago.first_instant_at_or_after(local(2026, 9, 5)), utc(2026, 9, 5, 4));
    const auto apr4 = santiago.first_instant_at_or_after(local(2026, 4, 4));
    const auto apr5 = santiago.first_instant_at_or_after(local(2026, 4, 5));
    EXPECT_EQ(apr4, utc(2026, 4, 4, 3));
    EXPECT_EQ(apr5, utc(2026, 4, 5, 4)) << "the second midnight: the first one was 23:59:59 -> 23:00";
    EXPECT_EQ(apr5 - apr4, 25h);
}

TEST(time_zone, years_past_the_files_last_transition_follow_its_rule) {
    NEED_TZDATA();
    const auto berlin = zone("Europe/Berlin");
    EXPECT_EQ(berlin.offset_at(utc(2045, 3, 26, 0, 59, 59)), 1h);
    EXPECT_EQ(berlin.offset_at(utc(2045, 3, 26, 1)), 2h);
    EXPECT_EQ(berlin.offset_at(utc(2045, 10, 29, 1)), 1h);
    EXPECT_EQ(berlin.first_instant_at_or_after(local(2045, 10, 30)) - berlin.first_instant_at_or_after(local(2045, 10, 29)), 25h);
    const auto new_york = zone("America/New_York");
    EXPECT_EQ(new_york.offset_at(utc(2050, 3, 13, 6, 59, 59)), -5h);  // second Sunday of March 2050 is the 13th
    EXPECT_EQ(new_york.offset_at(utc(2050, 3, 13, 7)), -4h);
    const auto sydney = zone("Australia/Sydney");
    EXPECT_EQ(sydney.offset_at(utc(2050, 1, 1)), 11h);
    EXPECT_EQ(sydney.offset_at(utc(2050, 6, 1)), 10h);
}

TEST(time_zone, zones_without_dst_and_with_half_hours) {
    NEED_TZDATA();
    const auto kolkata = zone("Asia/Kolkata");
    EXPECT_EQ(kolkata.offset_at(utc(2026, 6, 1)), 5h + 30min);
    EXPECT_EQ(kolkata.first_instant_at_or_after(local(2026, 12, 2)), utc(2026, 12, 1, 18, 30));
    EXPECT_EQ(time_zone::format_offset(5h + 30min), "+05:30");
    EXPECT_EQ(time_zone::format_offset(-3h), "-03:00");
    EXPECT_EQ(time_zone::format_offset(0s), "+00:00");
    EXPECT_EQ(time_zone::format_offset(5h + 45min), "+05:45");
}

TEST(time_zone, unsafe_or_unknown_names_are_refused) {
    for (const char* name : {"../etc/passwd", "/etc/localtime", "Europe/../../etc/passwd", "Europe//Berlin", "", "Europe/Ber lin"}) {
        auto z = time_zone::load(name, zoneinfo);
        ASSERT_TRUE(std::holds_alternative<std::string>(z)) << name;
        EXPECT_NE(std::get<std::string>(z).find("IANA"), std::string::npos) << std::get<std::string>(z);
    }
    auto z = time_zone::load("Mars/Olympus_Mons", zoneinfo);
    ASSERT_TRUE(std::holds_alternative<std::string>(z));
    EXPECT_NE(std::get<std::string>(z).find("tzdata"), std::string::npos);
}

TEST(time_zone, broken_files_are_refused) {
    EXPECT_TRUE(std::holds_alternative<std::string>(time_zone::from_tzif("x", "")));
    EXPECT_TRUE(std::holds_alternative<std::string>(time_zone::from_tzif("x", "TZif2 not really a zone file at all, sorry.")));
    std::string header(44, '\0');
    header.replace(0, 5, "TZif2");
    EXPECT_TRUE(std::holds_alternative<std::string>(time_zone::from_tzif("x", header))) << "no local time types";
}

TEST(time_zone, a_version_1_file_without_footer_works) {
    // Hand-made: one transition at 1000 s from +1h (type 0) to +2h (type 1).
    std::string f = "TZif";
    f += '\0';
    f.append(15, '\0');
    auto u32 = [&f](std::uint32_t v) {
        for (int i = 3; i >= 0; --i) f += static_cast<char>((v >> (8 * i)) & 0xff);
    };
    u32(0);  // isutcnt
    u32(0);  // isstdcnt
    u32(0);  // leapcnt
    u32(1);  // timecnt
    u32(2);  // typecnt
    u32(4);  // charcnt
    u32(1000);
    f += '\1';
    u32(3600);
    f += '\0';
    f += '\0';
    u32(7200);
    f += '\1';
    f += '\0';
    f.append("ABC", 4);
    auto z = time_zone::from_tzif("hand", f);
    ASSERT_TRUE(std::holds_alternative<time_zone>(z)) << std::get<std::string>(z);
    const auto& tz = std::get<time_zone>(z);
    EXPECT_EQ(tz.offset_at(sys_seconds{999s}), 1h);
    EXPECT_EQ(tz.offset_at(sys_seconds{1000s}), 2h);
    EXPECT_EQ(tz.offset_at(sys_seconds{100000000s}), 2h);
}

}  // namespace
}  // namespace voice_broker
