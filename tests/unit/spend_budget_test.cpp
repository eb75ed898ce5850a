// Unit tests for spend_budget and budget_record: admission by the issue's rule, local-midnight and
// first-of-month resets (DST days and month ends included), the 80 % / 100 % lines once per
// period, and the durable record (atomic file, corrupt or missing file starts at zero).
#include "voice_broker/budget_record.hpp"
#include "voice_broker/file_io.hpp"
#include "voice_broker/spend_budget.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace voice_broker {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

sys_seconds utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
    return sys_days{year{y} / month{m} / day{d}} + hours{hh} + minutes{mm} + seconds{ss};
}
usd_amount usd(double d) { return usd_amount::from_dollars(d); }

time_zone berlin() {
    auto z = time_zone::load("Europe/Berlin", "/usr/share/zoneinfo");
    if (std::holds_alternative<std::string>(z)) return time_zone::utc();
    return std::get<time_zone>(z);
}
bool have_tzdata() { return std::filesystem::exists("/usr/share/zoneinfo/Europe/Berlin"); }

TEST(spend_budget, the_issues_rule_for_one_budget) {
    // spent + committed + one full session at COST_PER_MINUTE_USD must stay within the budget.
    EXPECT_TRUE(spend_budget::fits(usd(10), usd(9.5), usd(0), 0.06, 5));    // 9.5 + 0.3 = 9.8
    EXPECT_TRUE(spend_budget::fits(usd(10), usd(9.4), usd(0.3), 0.06, 5));  // exactly 10
    EXPECT_FALSE(spend_budget::fits(usd(10), usd(9.4), usd(0.31), 0.06, 5));
    EXPECT_FALSE(spend_budget::fits(usd(10), usd(9.8), usd(0), 0.06, 5));
    EXPECT_TRUE(spend_budget::fits(usd(0), usd(1e6), usd(1e6), 0.06, 5)) << "zero: no budget";
}

TEST(spend_budget, admits_while_spent_committed_and_one_session_fit) {
    const auto t0 = utc(2026, 12, 1, 10);
    spend_budget b({.daily = usd(1), .monthly = usd(0)}, time_zone::utc(), {}, t0);
    b.add_real(usd(0.5), t0);
    auto c = b.check_admission(t0, usd(0.2), usd(0.3));
    EXPECT_TRUE(c.allowed) << "0.5 + 0.2 + 0.3 = 1.0: within";
    c = b.check_admission(t0, usd(0.21), usd(0.3));
    EXPECT_FALSE(c.allowed);
    EXPECT_FALSE(c.exhausted) << "a session that ends frees its committed minutes";
    EXPECT_EQ(c.blocking, budget_period::day);
    EXPECT_EQ(c.retry_at, utc(2026, 12, 2));
    b.add_estimated(usd(0.21), t0);
    c = b.check_admission(t0, usd(0), usd(0.3));
    EXPECT_FALSE(c.allowed);
    EXPECT_TRUE(c.exhausted) << "0.71 spent + one session 0.30 > 1: nobody until midnight";
}

TEST(spend_budget, the_month_blocks_until_the_first_when_both_refuse) {
    const auto t0 = utc(2026, 12, 30, 10);
    spend_budget b({.daily = usd(5), .monthly = usd(5)}, time_zone::utc(), {}, t0);
    b.add_real(usd(4.9), t0);
    const auto c = b.check_admission(t0, usd(0), usd(0.3));
    EXPECT_TRUE(c.exhausted);
    EXPECT_EQ(c.blocking, budget_period::month);
    EXPECT_EQ(c.retry_at, utc(2027, 1, 1)) << "the later reset: the day's would not help";
}

TEST(spend_budget, a_new_local_day_starts_at_zero_and_the_month_keeps_counting) {
    if (!have_tzdata()) GTEST_SKIP() << "tzdata missing";
    // 22:30Z on Dec 1 is 23:30 in Berlin; 23:00Z is midnight there.
    const auto t0 = utc(2026, 12, 1, 22, 30);
    spend_budget b({.daily = usd(10), .monthly = usd(100)}, berlin(), {}, t0);
    b.add_real(usd(3), t0);
    auto s = b.status(t0);
    EXPECT_EQ(s.day.key, "2026-12-01");
    EXPECT_EQ(s.day_resets_at, utc(2026, 12, 1, 23));
    EXPECT_EQ(s.month_resets_at, utc(2026, 12, 31, 23));
    EXPECT_EQ(s.utc_offset, 1h);
    s = b.status(utc(2026, 12, 1, 23));
    EXPECT_EQ(s.day.key, "2026-12-02");
    EXPECT_TRUE(s.day.total().is_zero());
    EXPECT_EQ(s.month.total(), usd(3));
    EXPECT_EQ(s.day_resets_at, utc(2026, 12, 2, 23));
}

TEST(spend_budget, resets_follow_dst_days_and_month_ends) {
    if (!have_tzdata()) GTEST_SKIP() << "tzdata missing";
    spend_budget b({.daily = usd(10), .monthly = usd(100)}, berlin(), {}, utc(2026, 3, 28, 12));
    EXPECT_EQ(b.status(utc(2026, 3, 28, 12)).day_resets_at, utc(2026, 3, 28, 23));
    EXPECT_EQ(b.status(utc(2026, 3, 28, 23)).day_resets_at, utc(2026, 3, 29, 22)) << "March 29 lasts 23 hours";
    EXPECT_EQ(b.status(utc(2026, 3, 29, 22)).month_resets_at, utc(2026, 3, 31, 22)) << "April begins at 22:00Z (CEST)";
    EXPECT_EQ(b.status(utc(2026, 10, 24, 22)).day_resets_at, utc(2026, 10, 25, 23)) << "October 25 lasts 25 hours";
    EXPECT_EQ(b.status(utc(2027, 2, 10)).month_resets_at, utc(2027, 2, 28, 23)) << "February 2027 has 28 days";
    EXPECT_EQ(b.status(utc(2028, 2, 10)).month_resets_at, utc(2028, 2, 29, 23)) << "2028 is a leap year";
    EXPECT_EQ(b.status(utc(2028, 12, 31, 12)).month_resets_at, utc(2028, 12, 31, 23)) << "into the new year";
    EXPECT_EQ(b.status(utc(2028, 12, 31, 23)).month.key, "2029-01");
}

TEST(spend_budget, counts_the_tokens_behind_the_real_cost_per_period) {
    const auto t0 = utc(2026, 12, 1, 9);
    spend_budget b({}, time_zone::utc(), {}, t0);
    token_usage u;
    u.audio_output = 48;
    u.cached_text_input = 64;
    b.add_real(usd(0.01), t0, u);
    b.add_real(usd(0.01), t0, u);
    EXPECT_EQ(b.status(t0).day.tokens.audio_output, 96u);
    EXPECT_EQ(b.status(t0).month.tokens.cached_text_input, 128u);
    EXPECT_EQ(b.status(utc(2026, 12, 2)).day.tokens.audio_output, 0u) << "a new day";
    EXPECT_EQ(b.status(utc(2026, 12, 2)).month.tokens.audio_output, 96u);
}

TEST(spend_budget, warns_at_80_and_100_percent_once_per_period) {
    const auto t0 = utc(2026, 12, 1, 9);
    spend_budget b({.daily = usd(1), .monthly = usd(10)}, time_zone::utc(), {}, t0);
    b.add_real(usd(0.79), t0);
    EXPECT_TRUE(b.take_crossings().empty());
    b.add_real(usd(0.01), t0);
    auto crossings = b.take_crossings();
    ASSERT_EQ(crossings.size(), 1u);
    EXPECT_EQ(crossings[0].period, budget_period::day);
    EXPECT_EQ(crossings[0].percent, 80);
    EXPECT_EQ(crossings[0].spent, usd(0.8));
    b.add_real(usd(0.1), t0);
    EXPECT_TRUE(b.take_crossings().empty()) << "80 % is told once";
    b.add_estimated(usd(0.3), t0);  // 1.2: past 100 % in one step
    crossings = b.take_crossings();
    ASSERT_EQ(crossings.size(), 1u);
    EXPECT_EQ(crossings[0].percent, 100);
    // A new day may cross again; the month (1.2 of 10) has not crossed anything.
    const auto t1 = utc(2026, 12, 2, 9);
    b.add_real(usd(1.0), t1);
    crossings = b.take_crossings();
    ASSERT_EQ(crossings.size(), 2u);
    EXPECT_EQ(crossings[0].percent, 80);
    EXPECT_EQ(crossings[1].percent, 100);
    const auto s = b.status(t1);
    EXPECT_DOUBLE_EQ(s.day_ratio(), 1.0);
    EXPECT_DOUBLE_EQ(s.month_ratio(), 0.22);
}

TEST(spend_budget, both_lines_crossed_at_once_are_both_told) {
    const auto t0 = utc(2026, 12, 1, 9);
    spend_budget b({.daily = usd(0), .monthly = usd(2)}, time_zone::utc(), {}, t0);
    b.add_real(usd(5), t0);
    const auto crossings = b.take_crossings();
    ASSERT_EQ(crossings.size(), 2u);
    EXPECT_EQ(crossings[0].period, budget_period::month);
    EXPECT_EQ(crossings[0].percent, 80);
    EXPECT_EQ(crossings[1].percent, 100);
}

TEST(spend_budget, a_restart_keeps_the_current_periods_and_their_warnings) {
    const auto t0 = utc(2026, 12, 1, 9);
    budget_record saved;
    {
        spend_budget b({.daily = usd(1), .monthly = usd(10)}, time_zone::utc(), {}, t0);
        b.add_real(usd(0.9), t0);
        b.take_crossings();
        saved = b.record();
    }
    spend_budget same_day({.daily = usd(1), .monthly = usd(10)}, time_zone::utc(), saved, t0 + 1h);
    EXPECT_EQ(same_day.status(t0 + 1h).day.total(), usd(0.9));
    EXPECT_TRUE(same_day.take_crossings().empty()) << "80 % was told before the restart";
    EXPECT_FALSE(same_day.check_admission(t0 + 1h, usd(0), usd(0.3)).allowed);

    spend_budget next_day({.daily = usd(1), .monthly = usd(10)}, time_zone::utc(), saved, utc(2026, 12, 2, 9));
    EXPECT_TRUE(next_day.status(utc(2026, 12, 2, 9)).day.total().is_zero());
    EXPECT_EQ(next_day.status(utc(2026, 12, 2, 9)).month.total(), usd(0.9));

    spend_budget next_month({.daily = usd(1), .monthly = usd(10)}, time_zone::utc(), saved, utc(2027, 1, 1));
    EXPECT_TRUE(next_month.status(utc(2027, 1, 1)).month.total().is_zero());
}

TEST(spend_budget, lowering_a_limit_can_cross_a_line_at_once) {
    const auto t0 = utc(2026, 12, 1, 9);
    spend_budget b({.daily = usd(10), .monthly = usd(0)}, time_zone::utc(), {}, t0);
    b.add_real(usd(3), t0);
    EXPECT_TRUE(b.take_crossings().empty());
    b.set_limits({.daily = usd(3), .monthly = usd(0)}, t0);
    EXPECT_EQ(b.take_crossings().size(), 2u);
}

TEST(spend_budget, saves_at_most_every_interval_but_at_once_after_a_crossing) {
    const auto t0 = utc(2026, 12, 1, 9);
    spend_budget b({.daily = usd(100), .monthly = usd(0)}, time_zone::utc(), {}, t0);
    ASSERT_TRUE(b.record_to_save(t0)) << "a fresh record is worth writing";
    b.add_real(usd(1), t0 + 1s);
    EXPECT_FALSE(b.record_to_save(t0 + 2s));
    const auto later = b.record_to_save(t0 + 11s);
    ASSERT_TRUE(later);
    EXPECT_EQ(later->day.real, usd(1));
    EXPECT_FALSE(b.record_to_save(t0 + 30s)) << "nothing changed";
    b.add_real(usd(80), t0 + 31s);  // crosses 80 %
    EXPECT_TRUE(b.record_to_save(t0 + 32s));
    b.add_real(usd(0.01), t0 + 33s);
    EXPECT_TRUE(b.record_to_save(t0 + 34s, 0s)) << "shutdown: no interval";
}

TEST(budget_record, round_trips_through_json_exactly) {
    budget_record r;
    r.time_zone = "Europe/Berlin";
    token_usage t;
    t.text_input = 56;
    t.cached_text_input = 64;
    t.audio_input = 40;
    t.text_output = 12;
    t.audio_output = 48;
    r.day = {"2026-12-01", usd_amount{4'793'600'000}, usd(0.06), t, true, false};
    r.month = {"2026-12", usd(12.345678), usd(1.5), t + t, true, true};
    const auto text = to_json_text(r);
    EXPECT_NE(text.find("\"realPicoUsd\": 4793600000"), std::string::npos) << text;
    auto back = budget_record_from_json(text);
    ASSERT_TRUE(std::holds_alternative<budget_record>(back)) << std::get<std::string>(back);
    EXPECT_EQ(std::get<budget_record>(back), r);
}

TEST(budget_record, the_file_is_written_atomically_and_read_back) {
    testing::temp_dir dir;
    const auto file = dir.path() / "data" / budget_file_name;  // the folder is made
    budget_record r;
    r.day = {"2026-12-01", usd(1), usd(0), {}, false, false};
    r.month = {"2026-12", usd(2), usd(0), {}, false, false};
    ASSERT_EQ(save_budget_record(file, r), std::nullopt);
    r.day.real = usd(3);
    ASSERT_EQ(save_budget_record(file, r), std::nullopt);
    const auto loaded = load_budget_record(file);
    EXPECT_FALSE(loaded.warning);
    EXPECT_EQ(loaded.record, r);
    // No temporary file is left beside it.
    int entries = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(file.parent_path())) ++entries;
    EXPECT_EQ(entries, 1);
    EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::others_read, std::filesystem::perms::none);
}

TEST(budget_record, a_missing_or_corrupt_file_starts_at_zero_with_a_warning) {
    testing::temp_dir dir;
    auto loaded = load_budget_record(dir.path() / "budget.json");
    ASSERT_TRUE(loaded.warning);
    EXPECT_NE(loaded.warning->find("starts at zero"), std::string::npos);
    EXPECT_EQ(loaded.record, budget_record{});
    for (const char* bad : {"", "{", "[]", R"({"version":1,"timeZone":"UTC"})",
                            R"({"version":1,"timeZone":"UTC","day":{"period":"2026-12-01","realPicoUsd":-5,"estimatedPicoUsd":0},"month":{"period":"2026-12","realPicoUsd":0,"estimatedPicoUsd":0}})",
                            R"({"version":2})"}) {
        const auto file = dir.write("corrupt.json", bad);
        loaded = load_budget_record(file);
        ASSERT_TRUE(loaded.warning) << bad;
        EXPECT_NE(loaded.warning->find("corrupt"), std::string::npos) << *loaded.warning;
        EXPECT_EQ(loaded.record, budget_record{});
    }
}

TEST(budget_record, an_unwritable_folder_is_an_error_not_a_crash) {
    testing::temp_dir dir;
    const auto blocker = dir.write("not-a-folder", "x");
    const auto err = save_budget_record(blocker / "budget.json", budget_record{});
    ASSERT_TRUE(err);
    EXPECT_NE(err->find("cannot"), std::string::npos) << *err;
}

}  // namespace
}  // namespace voice_broker
