// call_monitor: what the server makes of one call's sideband, with no I/O.
//
// One per upstream call.  The shell (the session service, with a sideband_client) feeds it the
// sideband's life (opened, closed, refused) and every server event, with `now`, and carries out
// the actions it returns, Boost.MySQL style: send this client event, reconnect the sideband, end
// the session as idle, count this usage.  It keeps one deadline (next_deadline()) for the shell's
// timer.  It decides for this call only; session_calls adds the rules that span a session's
// calls (one wrap-up per session, idle only when every call is, a lost call ends the session only
// when no other call lives).
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/price_table.hpp"
#include "voice_broker/time.hpp"
#include "voice_broker/token_usage.hpp"
#include "voice_broker/usd_amount.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace voice_broker {

// What the server insists on, and the cost guard's timings.  From the config, once per session.
struct call_monitor_settings {
    // The server's session values; a page that changes them gets them back.
    std::string model = "gpt-realtime";
    std::string instructions;
    std::string voice = "marin";
    nlohmann::json tools = nlohmann::json::array();
    std::optional<int> max_output_tokens;  // unset: "inf"
    std::string transcription_model;       // prices the input transcription's usage

    std::chrono::seconds wrap_up_before{30};  // 0: no wrap-up
    std::string wrap_up_en;
    std::string wrap_up_ru;
    std::chrono::seconds silence_timeout{0};  // 0: never idle
    std::chrono::seconds call_lost_grace{15};

    // Reconnecting a sideband that dropped while its call may still live.
    int max_reconnects = 3;
    std::chrono::milliseconds first_reconnect_delay{500};  // doubles each time
    // After the wrap-up's item, how long to wait for the server's own response (turn detection
    // answers a visitor who just stopped speaking) before asking for one.
    std::chrono::milliseconds wrap_up_response_wait{1500};
};

// The settings for the calls of sessions started under `c` (the server's session values, the
// wrap-up texts and timings).
call_monitor_settings make_call_monitor_settings(const config& c);

// Why the shell's sideband ended.
struct sideband_end_info {
    enum class kind {
        closed,   // an open sideband closed: `close_code` (1006 when the connection dropped)
        refused,  // the upgrade was answered with `http_status` (404: the call is unknown or over)
        failed,   // it never opened (DNS, TCP, TLS, proxy, timeout): `detail`
    };
    kind what = kind::failed;
    int close_code = 0;
    int http_status = 0;
    std::string detail{};
};

struct monitor_action {
    enum class kind {
        send,                // send `event` on the sideband (a client event, JSON text)
        reconnect_sideband,  // open the sideband again now
        close_sideband,      // the call is over for the server; close its sideband
        usage,               // a response (or transcription) was billed: `usage`, `cost`, `model`
        session_reverted,    // the page changed `fields`; the revert is in a `send` before this
        wrap_up_sent,        // the wrap-up message went out (count it; once per session)
        sideband_failed,     // no sideband any more (`detail`): the call goes on unwatched
        idle,                // neither side spoke for SILENCE_TIMEOUT_SECONDS
        call_lost,           // the call ended upstream, CALL_LOST_GRACE_SECONDS ago
        upstream_error,      // an `error` event about one of our client events: `detail` (log it)
    };
    kind what = kind::send;
    std::string event{};                // send
    std::vector<std::string> fields{};  // session_reverted: instructions, model, voice, tools, max_output_tokens
    token_usage usage{};                // usage
    usd_amount cost{};                  // usage: in dollars; zero with priced == false
    bool priced = true;                 // usage: false when the price table has no entry for the model
    std::string model{};                // usage: the model it was billed for
    std::string detail{};               // sideband_failed, upstream_error, call_lost (why)
};

class call_monitor {
public:
    enum class language { en, ru };

    // `session_end`: when the session will be ended (the wrap-up comes before it);
    // `wrap_up_due`: false when the session's wrap-up already went out through another call.
    call_monitor(call_monitor_settings settings, price_table prices, steady_time session_end, language lang,
                 bool wrap_up_due, steady_time now);

    // ---- what the sideband did -----------------------------------------------------------
    void sideband_opened(steady_time now);
    void sideband_ended(const sideband_end_info& why, steady_time now);
    // One server event (already parsed).  Anything unexpected is ignored.
    void on_event(const nlohmann::json& event, steady_time now);
    // The shell's timer fired (or any time): acts on what is due.
    void on_timer(steady_time now);

    // ---- what the session tells it ---------------------------------------------------------
    // Another call of the session sent the wrap-up.
    void wrap_up_done_elsewhere() { wrap_up_ = wrap_up_state::done; }
    void set_language(language lang) { language_ = lang; }
    // The session ended: nothing more to do (the shell hangs up and closes the sideband).
    void stop();

    // ---- results ---------------------------------------------------------------------------
    std::vector<monitor_action> take_actions() { return std::exchange(actions_, {}); }
    std::optional<steady_time> next_deadline() const;

    // True until the call is known to be over (closed for good, refused with 404, or stopped).
    bool alive() const { return call_ != call_state::ended && call_ != call_state::ending; }
    // True while usage and silence cannot be seen: the sideband never opened or was given up.
    bool blind() const { return sideband_ != sideband_state::open && sideband_ != sideband_state::reconnecting; }
    bool sideband_open() const { return sideband_ == sideband_state::open; }
    // Someone is speaking now (the visitor, or the assistant's response or its audio).
    bool active() const { return user_speaking_ || responses_active_ > 0 || audio_playing_; }
    steady_time last_activity() const { return last_activity_; }
    // The instant at which this call would count as idle, if nothing happens; nullopt when it
    // cannot be idle now (active, blind, or silence detection off).
    std::optional<steady_time> idle_at() const;

    const token_usage& usage() const { return usage_; }
    usd_amount cost() const { return cost_; }
    bool all_usage_priced() const { return all_priced_; }
    // Every response since the sideband first opened was seen (no drop, no failure).  Usage from
    // before the first open (token mode: the page may talk before it reports the call) is never
    // seen; docs/COST.md says how the estimate covers it.
    bool usage_complete() const { return opened_once_ && !gap_; }
    const std::string& current_model() const { return model_; }

private:
    enum class sideband_state { connecting, open, reconnecting, lost, gone };
    enum class call_state { live, ending, ended };
    enum class wrap_up_state { due, waiting_for_response, done, off };

    void on_session_updated(const nlohmann::json& session);
    void on_error(const nlohmann::json& event, steady_time now);
    void on_usage(const nlohmann::json& usage, const std::string& model, bool transcription);
    void send_revert(const std::vector<std::string>& fields, bool counted);
    void send_sync();
    void maybe_wrap_up(steady_time now);
    void maybe_request_wrap_up_response(steady_time now);
    void send_response_create();
    void call_over(const std::string& why, steady_time now);
    void activity(steady_time now) { last_activity_ = now; }
    std::string next_event_id(const char* purpose);
    void push(monitor_action a) { actions_.push_back(std::move(a)); }

    call_monitor_settings settings_;
    price_table prices_;
    steady_time session_end_;
    language language_;
    sideband_state sideband_ = sideband_state::connecting;
    call_state call_ = call_state::live;
    wrap_up_state wrap_up_;
    std::optional<steady_time> reconnect_at_;
    int reconnects_ = 0;
    std::optional<steady_time> lost_at_;  // call_state::ending: when the grace ends
    std::string lost_reason_;
    bool synced_ = false;                 // our values were sent once on this call
    std::uint64_t event_counter_ = 0;
    std::string pending_revert_id_;       // our last session.update's event_id
    std::vector<std::string> pending_revert_fields_;
    std::vector<std::string> unrevertable_;  // fields the API refuses to change back (voice after audio)
    std::string wrap_up_item_id_;         // our system message's item id
    bool wrap_up_item_confirmed_ = false; // the server added it (conversation.item.added)
    std::string wrap_up_response_id_;     // our response.create's event_id
    std::optional<steady_time> wrap_up_response_at_;  // ask for the wrap-up response then
    bool assistant_has_spoken_ = false;

    bool user_speaking_ = false;
    int responses_active_ = 0;
    bool audio_playing_ = false;
    steady_time last_activity_;

    std::string model_;  // the session's model, as session.updated last said
    token_usage usage_;
    usd_amount cost_;
    bool all_priced_ = true;
    bool stopped_ = false;
    bool idle_reported_ = false;  // `idle` was reported for this stretch of silence
    bool opened_once_ = false;
    bool gap_ = false;            // the sideband was down for a while: usage may be missing
    std::vector<monitor_action> actions_;
};

}  // namespace voice_broker
