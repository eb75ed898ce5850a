#include "voice_broker/spend_budget.hpp"

#include <cstdio>

namespace voice_broker {

namespace {

using std::chrono::days;

std::chrono::year_month_day local_date(local_seconds local) {
    return std::chrono::year_month_day{std::chrono::floor<days>(local)};
}

double ratio(usd_amount spent, usd_amount limit) {
    if (limit.picodollars <= 0) return 0;
    return static_cast<double>(spent.picodollars) / static_cast<double>(limit.picodollars);
}

}  // namespace

const char* to_string(budget_period p) { return p == budget_period::day ? "day" : "month"; }

double budget_status::day_ratio() const { return ratio(day.total(), limits.daily); }
double budget_status::month_ratio() const { return ratio(month.total(), limits.monthly); }

spend_budget::spend_budget(budget_limits limits, time_zone zone, const budget_record& restored, sys_seconds now)
    : limits_(limits), zone_(std::move(zone)) {
    record_.time_zone = zone_.name();
    roll(now);  // sets this period's keys
    // Keep what was spent in the periods that are still running.
    if (restored.day.key == record_.day.key) record_.day = restored.day;
    if (restored.month.key == record_.month.key) record_.month = restored.month;
    dirty_ = !(restored == record_);
    check_lines(budget_period::day);
    check_lines(budget_period::month);
}

bool spend_budget::fits(usd_amount budget, usd_amount spent, usd_amount committed, double cost_per_minute_usd,
                        double session_minutes) {
    if (budget.picodollars <= 0) return true;
    const auto one_session = usd_amount::from_dollars(cost_per_minute_usd * session_minutes);
    return spent + committed + one_session <= budget;
}

std::string spend_budget::day_key(local_seconds local) const {
    const auto d = local_date(local);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                  static_cast<unsigned>(d.day()));
    return buf;
}

std::string spend_budget::month_key(local_seconds local) const { return day_key(local).substr(0, 7); }

void spend_budget::roll(sys_seconds now) {
    if (!record_.day.key.empty() && now < day_reset_ && now < month_reset_) return;
    const auto local = zone_.to_local(now);
    const auto date = local_date(local);
    if (record_.day.key.empty() || now >= day_reset_) {
        const auto key = day_key(local);
        if (key != record_.day.key) {
            if (!record_.day.key.empty()) urgent_ = true;
            record_.day = period_spend{key, {}, {}, {}, false, false};
            dirty_ = true;
        }
        const local_seconds next_midnight{std::chrono::local_days{std::chrono::sys_days{date}.time_since_epoch()} + days{1}};
        day_reset_ = zone_.first_instant_at_or_after(next_midnight);
    }
    if (record_.month.key.empty() || now >= month_reset_) {
        const auto key = month_key(local);
        if (key != record_.month.key) {
            if (!record_.month.key.empty()) urgent_ = true;
            record_.month = period_spend{key, {}, {}, {}, false, false};
            dirty_ = true;
        }
        const auto first_of_next = std::chrono::year_month_day{date.year() / date.month() / 1} + std::chrono::months{1};
        const local_seconds next_month{std::chrono::local_days{std::chrono::sys_days{first_of_next}.time_since_epoch()}};
        month_reset_ = zone_.first_instant_at_or_after(next_month);
    }
}

void spend_budget::check_lines(budget_period period) {
    auto& spend = period == budget_period::day ? record_.day : record_.month;
    const auto limit = period == budget_period::day ? limits_.daily : limits_.monthly;
    if (limit.picodollars <= 0) return;
    // Exact: spent * 100 >= limit * 80, without floating point.  __int128: spent can be large.
    const auto spent = static_cast<__int128>(spend.total().picodollars);
    const auto cap = static_cast<__int128>(limit.picodollars);
    if (!spend.warned_80 && spent * 100 >= cap * 80) {
        spend.warned_80 = true;
        crossings_.push_back({period, 80, spend.total(), limit});
        dirty_ = urgent_ = true;
    }
    if (!spend.warned_100 && spent >= cap) {
        spend.warned_100 = true;
        crossings_.push_back({period, 100, spend.total(), limit});
        dirty_ = urgent_ = true;
    }
}

void spend_budget::add_real(usd_amount amount, sys_seconds now, const token_usage& tokens) {
    roll(now);
    if (amount.picodollars <= 0 && tokens.empty()) return;
    record_.day.real += amount;
    record_.month.real += amount;
    record_.day.tokens += tokens;
    record_.month.tokens += tokens;
    dirty_ = true;
    check_lines(budget_period::day);
    check_lines(budget_period::month);
}

void spend_budget::add_estimated(usd_amount amount, sys_seconds now) {
    roll(now);
    if (amount.picodollars <= 0) return;
    record_.day.estimated += amount;
    record_.month.estimated += amount;
    dirty_ = true;
    check_lines(budget_period::day);
    check_lines(budget_period::month);
}

bool spend_budget::adopt_shared(const period_spend& day, const period_spend& month, sys_seconds now) {
    roll(now);
    bool changed = false;
    auto adopt = [&](period_spend& mine, const period_spend& shared) {
        if (shared.key != mine.key) return;
        auto next = shared;
        next.warned_80 = mine.warned_80 || shared.warned_80;
        next.warned_100 = mine.warned_100 || shared.warned_100;
        if (next == mine) return;
        mine = std::move(next);
        changed = true;
    };
    adopt(record_.day, day);
    adopt(record_.month, month);
    check_lines(budget_period::day);
    check_lines(budget_period::month);
    return changed;
}

admission_check spend_budget::check_admission(sys_seconds now, usd_amount committed, usd_amount one_session) {
    roll(now);
    admission_check out;
    auto consider = [&](budget_period period, usd_amount limit, const period_spend& spend, sys_seconds reset) {
        if (limit.picodollars <= 0) return;
        if (spend.total() + committed + one_session <= limit) return;
        out.allowed = false;
        out.blocking = period;
        out.retry_at = std::max(out.retry_at, reset);
        if (spend.total() + one_session > limit) out.exhausted = true;
    };
    consider(budget_period::day, limits_.daily, record_.day, day_reset_);
    consider(budget_period::month, limits_.monthly, record_.month, month_reset_);
    return out;
}

budget_status spend_budget::status(sys_seconds now) {
    roll(now);
    return {limits_, record_.day, record_.month, day_reset_, month_reset_, zone_.offset_at(now)};
}

void spend_budget::set_limits(budget_limits limits, sys_seconds now) {
    roll(now);
    limits_ = limits;
    check_lines(budget_period::day);
    check_lines(budget_period::month);
}

std::optional<budget_record> spend_budget::record_to_save(sys_seconds now, std::chrono::seconds min_interval) {
    roll(now);
    if (!dirty_) return std::nullopt;
    if (!urgent_ && last_saved_ && now - *last_saved_ < min_interval) return std::nullopt;
    dirty_ = urgent_ = false;
    last_saved_ = now;
    return record_;
}

}  // namespace voice_broker
