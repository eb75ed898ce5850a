// shared_budget: the spend budget kept by a shared store (redis mode), so that every instance
// adds to one day's and one month's spend and the store's admission applies the budget itself,
// atomically with the admission (docs/COST.md, "Several instances").
//
// The cost guard owns the rule's inputs (BUDGET_TIMEZONE's current periods, the limits, the
// per-minute price) and hands them to the store as `budget_terms`, asked before every run that
// could admit; the store answers with the shared spend (`shared_spend`) after its runs.  The
// memory store keeps no budget: there the cost guard keeps it in DATA_DIR, as it always did.
//
// Amounts cross the seam in micro-dollars (10^-6 $): Redis's Lua reads numbers as doubles, exact
// to 2^53, which is about $9 billion in micro-dollars (picodollars would stop being exact at
// about $9,000).  Spend is rounded up to the micro-dollar, so the shared figure never undercounts.
#pragma once

#include "voice_broker/budget_record.hpp"
#include "voice_broker/token_usage.hpp"
#include "voice_broker/usd_amount.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace voice_broker {

inline constexpr std::int64_t picodollars_per_micro = 1'000'000;

// Rounded up: spend recorded in the store is never less than what was spent.
inline std::int64_t micro_usd_ceil(usd_amount a) {
    return a.picodollars <= 0 ? 0 : (a.picodollars + picodollars_per_micro - 1) / picodollars_per_micro;
}
// Rounded down: a limit is never raised by rounding.
inline std::int64_t micro_usd_floor(usd_amount a) { return a.picodollars <= 0 ? 0 : a.picodollars / picodollars_per_micro; }
inline usd_amount from_micro_usd(std::int64_t micro) { return {micro * picodollars_per_micro}; }

// What the store's admission applies now: one more session must fit every budget that is on,
// beside the spend of the current periods and the remaining minutes of every active lease.
struct budget_terms {
    std::string day_period;    // the local day in BUDGET_TIMEZONE, "2026-12-01"
    std::string month_period;  // "2026-12"
    std::int64_t daily_micro_usd = 0;    // 0: no daily budget
    std::int64_t monthly_micro_usd = 0;  // 0: no monthly budget
    std::int64_t cost_per_minute_micro_usd = 0;
};

// Spending to add to the current periods (real: reported by OpenAI; estimated: per-minute).
// A session's per-minute estimate is not added through here: the store charges it in the step
// that ends the session (less the real cost reported for that session), so that the admission
// the freed slot allows already counts it.
struct spend_delta {
    std::uint64_t entry_id = 0;  // the session the real cost belongs to (0: none)
    usd_amount real;
    usd_amount estimated;
    token_usage tokens;
    bool empty() const { return real.picodollars <= 0 && estimated.picodollars <= 0 && tokens.empty(); }
    spend_delta& operator+=(const spend_delta& other) {
        real += other.real;
        estimated += other.estimated;
        tokens += other.tokens;
        return *this;
    }
};

// The shared spend of the periods a run was given (amounts whole micro-dollars), and the lines
// (80 %, 100 %) that this instance's own addition just crossed: each line is crossed by exactly
// one addition per period, whichever instance made it, so exactly one instance logs it.
struct shared_spend {
    period_spend day;
    period_spend month;
    struct crossing {
        bool monthly = false;
        int percent = 0;
    };
    std::vector<crossing> crossed;
};

// A store that keeps the spend budget (redis_store); session_store::budget_keeper() finds it.
class shared_budget {
public:
    virtual ~shared_budget() = default;
    // `terms`: asked before every run of the store's script (nullopt: no budget applies).
    // `on_spend`: the shared spend, after every run that read it, before that run's own callback.
    virtual void link_budget(std::function<std::optional<budget_terms>()> terms,
                             std::function<void(const shared_spend&)> on_spend) = 0;
    // Adds spending to the current periods.  While the store cannot be reached it is kept here and
    // added later (to the periods current then); an addition whose answer was lost is added again,
    // so spend may be counted twice but is never lost.
    virtual void add_spend(const spend_delta& delta) = 0;
    // Spending not yet in the store (tests, and the shutdown log line).
    virtual bool spend_pending() const = 0;
};

}  // namespace voice_broker
