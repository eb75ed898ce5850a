// session_calls: the upstream calls of one session, each watched by its call_monitor, plus the
// rules that span them.  No I/O; one per active session, owned by the session service.
//
// - The wrap-up goes out once per session, through whichever call is watched at that moment.
// - `idle` ends the session only when every live call is watched and silent (a call whose
//   sideband is down could be busy).
// - `call_lost` ends the session only when no other call of it is alive: within the grace a
//   page that reloads opens a new call, and then nothing ends.
// Every action names its call; the session-level verdicts are `idle` and `call_lost` (end the
// session with reason idle / call_ended).  After either, or stop(), nothing more is decided.
#pragma once

#include "voice_broker/call_monitor.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace voice_broker {

struct session_call_action {
    std::string call_id;
    monitor_action action;
};

class session_calls {
public:
    session_calls(call_monitor_settings settings, price_table prices, steady_time session_end,
                  call_monitor::language lang);

    // A call of this session is known (token mode: action=call; relay mode: the call connect
    // opened).  The shell then opens its sideband (unless SIDEBAND=off: then don't add calls).
    // False when the call is already known.
    bool add_call(const std::string& call_id, steady_time now);

    void sideband_opened(const std::string& call_id, steady_time now);
    void sideband_ended(const std::string& call_id, const sideband_end_info& why, steady_time now);
    void on_event(const std::string& call_id, const nlohmann::json& event, steady_time now);
    void on_timer(steady_time now);
    void set_language(call_monitor::language lang);

    // The session ended (any reason): every call's sideband is to be closed (close_sideband
    // actions), and nothing more is decided.
    void stop();

    std::vector<session_call_action> take_actions() { return std::exchange(actions_, {}); }
    std::optional<steady_time> next_deadline() const;

    bool has_call(const std::string& call_id) const { return calls_.count(call_id) != 0; }
    std::size_t call_count() const { return calls_.size(); }
    const call_monitor* call(const std::string& call_id) const;

    // Sums over the session's calls.
    token_usage usage() const;
    usd_amount cost() const;
    // Every call was watched from its sideband's first open, without a gap; when false the
    // per-minute estimate covers what may be missing (see docs/COST.md).
    bool usage_complete() const;
    bool wrap_up_sent() const { return wrap_up_sent_; }
    bool stopped() const { return stopped_; }

private:
    void collect(const std::string& call_id, call_monitor& monitor, steady_time now);
    bool others_alive(const std::string& call_id) const;
    bool all_idle(steady_time now) const;

    call_monitor_settings settings_;
    price_table prices_;
    steady_time session_end_;
    call_monitor::language language_;
    std::map<std::string, std::unique_ptr<call_monitor>> calls_;
    std::vector<session_call_action> actions_;
    bool wrap_up_sent_ = false;
    bool stopped_ = false;
};

}  // namespace voice_broker
