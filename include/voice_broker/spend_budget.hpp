// spend_budget: DAILY_BUDGET_USD and MONTHLY_BUDGET_USD, counted in BUDGET_TIMEZONE.  It adds up
// what was spent today and this month (real usage and estimates), says whether one more session
// may be admitted, when each period resets, and when 80 % and 100 % are crossed.
//
// No I/O: every call takes the wall-clock `now`; the record it keeps is a plain value
// (budget_record) that the shell saves (a file in memory mode, the store in redis mode) and
// hands back at start-up.  One owner (the session service's strand).
#pragma once

#include "voice_broker/budget_record.hpp"
#include "voice_broker/time_zone.hpp"
#include "voice_broker/usd_amount.hpp"

#include <chrono>
#include <optional>
#include <utility>
#include <vector>

namespace voice_broker {

enum class budget_period { day, month };
const char* to_string(budget_period p);

struct budget_limits {
    usd_amount daily;    // zero: no daily budget
    usd_amount monthly;  // zero: no monthly budget
};

// One budget crossing 80 % or 100 % of its limit, reported once per period.
struct budget_crossing {
    budget_period period;
    int percent;  // 80 or 100
    usd_amount spent;
    usd_amount limit;
};

struct budget_status {
    budget_limits limits;
    period_spend day;    // today's spend (key: the local date)
    period_spend month;
    sys_seconds day_resets_at;    // the next local midnight
    sys_seconds month_resets_at;  // local midnight of the first of next month
    std::chrono::seconds utc_offset{0};  // the zone's offset now (for showing local times)
    // spent / limit, 0 when that budget is off.
    double day_ratio() const;
    double month_ratio() const;
};

// May one more session start?
struct admission_check {
    bool allowed = true;
    // Not even one session fits with nothing else running: nobody is admitted until `retry_at`
    // (join answers 503 budget_exhausted).  Implies !allowed.
    bool exhausted = false;
    std::optional<budget_period> blocking;  // the budget that refuses (month when both do)
    sys_seconds retry_at{};                 // the reset of the blocking period
};

class spend_budget {
public:
    // `restored`: the record saved before a restart.  It is kept only for the periods that are
    // still current in `zone` at `now`; older periods start at zero.
    spend_budget(budget_limits limits, time_zone zone, const budget_record& restored, sys_seconds now);

    // The rule for one budget: spent + committed (the remaining minutes of active
    // sessions) + one full session at cost_per_minute must stay within it.  A zero budget is off.
    static bool fits(usd_amount budget, usd_amount spent, usd_amount committed, double cost_per_minute_usd,
                     double session_minutes);

    // Adds spending at `now` (real: from OpenAI's usage; estimated: minutes at COST_PER_MINUTE_USD
    // for what no sideband reported).
    void add_real(usd_amount amount, sys_seconds now, const token_usage& tokens = {});
    void add_estimated(usd_amount amount, sys_seconds now);

    // Redis mode: the spend every instance shares, read from the store.  It replaces this
    // period's figures (a period that is not the current one is ignored); a line already logged
    // here or marked in the store stays logged.  Whether anything changed.
    bool adopt_shared(const period_spend& day, const period_spend& month, sys_seconds now);

    // `committed`: the remaining cost of active sessions; `one_session`: a full session at
    // COST_PER_MINUTE_USD.
    admission_check check_admission(sys_seconds now, usd_amount committed, usd_amount one_session);

    budget_status status(sys_seconds now);

    // The 80 % / 100 % crossings since the last call, each once per period (also after a
    // restart, since the record remembers them).  Log them at warn.
    std::vector<budget_crossing> take_crossings() { return std::exchange(crossings_, {}); }

    // SIGHUP: new limits; a lower one may cross a line at once.
    void set_limits(budget_limits limits, sys_seconds now);
    const budget_limits& limits() const { return limits_; }
    const time_zone& zone() const { return zone_; }

    // The record to save now, when it changed and (a crossing or a new period happened, or
    // `min_interval` passed since the last save); nullopt otherwise.  At shutdown pass a zero
    // interval.  Marks it saved.
    std::optional<budget_record> record_to_save(sys_seconds now, std::chrono::seconds min_interval = std::chrono::seconds{10});
    const budget_record& record() const { return record_; }

private:
    void roll(sys_seconds now);
    void check_lines(budget_period period);
    std::string day_key(local_seconds local) const;
    std::string month_key(local_seconds local) const;

    budget_limits limits_;
    time_zone zone_;
    budget_record record_;
    sys_seconds day_reset_{};
    sys_seconds month_reset_{};
    std::vector<budget_crossing> crossings_;
    bool dirty_ = false;
    bool urgent_ = false;  // a crossing or a new period: save without waiting
    std::optional<sys_seconds> last_saved_;
};

}  // namespace voice_broker
