// cost_guard: what the server does about money (docs/COST.md), on the session service's strand.
//
// It watches every call it is told of through the call's sideband (session_calls: the real cost
// from `response.done`'s usage, the wrap-up before the end, silence, lost calls, the server's
// session settings put back), adds what each session cost to the day's and the month's budget
// (spend_budget, saved in DATA_DIR), answers the store's admission gate (one more session must
// fit the budget), and pauses admissions for QUOTA_PAUSE_SECONDS when OpenAI says the account is
// out of credit.  It decides; the service carries out what it asks through `hooks`.
//
// With a store that keeps the budget itself (redis mode: shared_budget), the spend goes to the
// store instead of DATA_DIR, every instance adding to one figure, and the store's script applies
// the budget to every admission atomically; the gate here then holds only for the quota pause.
// The local spend_budget becomes a view of the shared figures (stats, the 503 for new visitors,
// what waiting visitors are told), refreshed by every answer of the store.
//
// Not thread-safe: every call comes on the service's strand, and so do the sidebands' handlers.
#pragma once

#include "voice_broker/admission_hold.hpp"
#include "voice_broker/call_monitor.hpp"
#include "voice_broker/config.hpp"
#include "voice_broker/end_reason.hpp"
#include "voice_broker/session_calls.hpp"
#include "voice_broker/shared_budget.hpp"
#include "voice_broker/spend_budget.hpp"
#include "voice_broker/time.hpp"
#include "voice_broker/usd_amount.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace voice_broker {

struct admin_context;
class metrics;
class sideband_client;
class sideband_connection;

class cost_guard {
public:
    struct hooks {
        // End an active session (idle, call_ended): the store's end_session.
        std::function<void(std::uint64_t entry_id, end_reason why)> end_session;
        // Admissions may have to be looked at again (the hold began or ended): recheck them in
        // the store and re-push the waiting visitors' statuses.  Never called from inside admits().
        std::function<void()> admissions_changed;
        // The length of a session admitted now (the operator may have changed it).
        std::function<std::chrono::seconds()> session_length;
    };

    // `sideband`: null when SIDEBAND=off or there is no API key (then calls are priced by the
    // per-minute estimate alone).  `shared`: the store's budget (redis mode), or null (the
    // budget is this process's, kept in DATA_DIR); it must outlive the guard.
    cost_guard(boost::asio::any_io_executor strand, const config& settings, metrics& counters,
               std::shared_ptr<sideband_client> sideband, std::function<steady_time()> clock,
               wall_clock_mapping wall_clock, hooks h, shared_budget* shared = nullptr);
    ~cost_guard();
    cost_guard(const cost_guard&) = delete;
    cost_guard& operator=(const cost_guard&) = delete;

    // A call of the active session `entry_id` (which ends at `session_end`) is known: watch it
    // through its sideband.  `russian`: the page speaks Russian (the wrap-up's language).
    void watch_call(std::uint64_t entry_id, steady_time session_end, const std::string& call_id, bool russian);

    // A session ended (on any instance).  Its watch stops here.  `count` (the instance that ended
    // it, for a session that held a slot for `talked`): its cost goes into the budget, the real
    // cost where every response was reported, else at least the per-minute estimate.
    struct session_cost {
        usd_amount real;
        usd_amount estimate;
    };
    session_cost session_ended(std::uint64_t entry_id, std::optional<std::chrono::milliseconds> talked, bool count);

    // OpenAI answered insufficient_quota: no admission for QUOTA_PAUSE_SECONDS.
    void quota_exhausted();
    // Seconds left of a quota pause (for the 503's Retry-After), nullopt when none.
    std::optional<std::int64_t> quota_pause_left();

    // The store's admission gate: may one more session start now, beside those running until
    // `running_until`?
    bool admits(steady_time now, const std::vector<steady_time>& running_until);
    // Why admissions are held (what the waiting visitors are told), or nullptr.
    const admission_hold* hold() const { return hold_ ? &*hold_ : nullptr; }
    // A new visitor's join while no session could be admitted anyway (the budget is spent, or a
    // quota pause): the hold to refuse it with.
    std::optional<admission_hold> refuses_new_visitors();
    // The shared store refused a new visitor for the budget: the hold to tell them (the blocking
    // budget's reset, as far as the shared spend it just reported shows).
    admission_hold budget_refusal();

    // The console's cost fields (admin_context).
    void describe(admin_context& ctx);

    // The "cost" section of stats; and a number that changes whenever that section does.
    nlohmann::json stats();
    std::uint64_t changes() const { return changes_; }

    // SIGHUP: new budgets at once; new calls take the new prices and wrap-up settings.
    void reload(const config& settings);
    // Stops every watch (closing the sidebands) and saves the budget.
    void shutdown();

private:
    struct watched {
        std::unique_ptr<session_calls> calls;
        std::map<std::string, std::shared_ptr<sideband_connection>> sidebands;
    };

    steady_time now() const { return clock_(); }
    std::chrono::sys_seconds wall_now() const;
    admission_hold make_hold(admission_hold::reason why, bool monthly, std::chrono::sys_seconds until) const;
    void set_hold(std::optional<admission_hold> hold);
    void open_sideband(std::uint64_t entry_id, const std::string& call_id);
    void drain(std::uint64_t entry_id);
    void add_real(std::uint64_t entry_id, const monitor_action& usage);
    // Redis mode: what the store's admission applies now, and the shared spend it reports.
    budget_terms terms_now();
    void on_shared_spend(const shared_spend& spend);
    usd_amount one_session() const;
    void after_cost_change();
    void save_budget(bool now);
    void arm_timer();
    void on_timer();

    boost::asio::any_io_executor strand_;
    config settings_;
    metrics& metrics_;
    std::shared_ptr<sideband_client> sideband_;
    std::function<steady_time()> clock_;
    wall_clock_mapping wall_clock_;
    hooks hooks_;
    shared_budget* shared_;    // null: this process keeps the budget (memory mode)
    std::string budget_file_;  // empty: not kept across restarts here (no DATA_DIR, or in the store)
    spend_budget budget_;
    std::unordered_map<std::uint64_t, watched> watched_;  // by entry id
    std::optional<steady_time> quota_paused_until_;
    std::optional<admission_hold> hold_;
    std::vector<std::string> unpriced_models_;  // warned about once each
    boost::asio::steady_timer timer_;
    std::optional<steady_time> timer_at_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::uint64_t changes_ = 0;
};

}  // namespace voice_broker
