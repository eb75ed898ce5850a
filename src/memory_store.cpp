#include "memory_store.hpp"

#include "restart_files.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

namespace voice_broker {

namespace net = boost::asio;

namespace {

// How long after a SIGTERM the saved places are still worth restoring: the visitors' pages keep
// retrying for about this long (a heartbeat timeout, plus a margin for the restart itself).
std::chrono::seconds restore_window(const session_limits& limits) { return limits.heartbeat_timeout + std::chrono::seconds{60}; }

// A call whose session the restart lost: hung up at the session's deadline.
struct orphan_call {
    std::string call_id;
    steady_time hang_up_at;
};

class memory_store_impl final : public memory_store {
public:
    memory_store_impl(const net::any_io_executor& strand, memory_store_options options)
        : clock_(std::move(options.clock)),
          wall_clock_(options.wall_clock ? std::move(options.wall_clock) : [] { return std::chrono::system_clock::now(); }),
          files_(options.data_dir),
          instance_(std::move(options.instance_id)),
          config_limits_(options.limits),
          operator_(files_.load_operator()),
          broker_(with_operator(options.limits)),
          strand_(strand),
          timer_(strand),
          alive_(std::make_shared<bool>(true)) {
        // Restored places wait for the spend budget's gate (set_admission_gate) before anyone
        // is admitted: else a restart would admit past a spent budget.
        broker_.set_paused(true, clock_());
        held_for_gate_ = !operator_.paused;
        restore_queue();
        adopt_orphaned_calls();
        broker_.take_events();  // nobody listens yet: the restored places announce themselves
    }

    ~memory_store_impl() override {
        *alive_ = false;
        timer_.cancel();
    }

    void set_listener(store_listener* listener) override {
        listener_ = listener;
        arm_timer();
    }

    // ---- the visitors' operations ----------------------------------------------------------------

    void join(join_request request, done<join_outcome> callback) override {
        const auto outcome = broker_.join(request.fresh_ticket,
                                          request.existing_ticket ? &*request.existing_ticket : nullptr, now());
        if (outcome.what == join_outcome::kind::joined) addresses_[outcome.status.entry_id] = request.client_address;
        after_change();
        callback(store_error::none, outcome);
    }

    void status(const std::string& ticket, done<std::optional<entry_status>> callback) override {
        callback(store_error::none, broker_.status(ticket, now()));
    }

    void heartbeat(const std::string& ticket, done<std::optional<entry_status>> callback) override {
        auto s = broker_.heartbeat(ticket, now());
        after_change();
        callback(store_error::none, std::move(s));
    }

    void leave(const std::string& ticket, done<std::optional<entry_status>> callback) override {
        const auto t = now();
        if (!broker_.status(ticket, t)) return callback(store_error::none, std::nullopt);
        broker_.leave(ticket, t);
        after_change();
        callback(store_error::none, broker_.status(ticket, t));
    }

    void force_end_all(done<std::size_t> callback) override {
        const auto ended = broker_.force_end_all(now());
        after_change();
        callback(store_error::none, ended);
    }

    void reserve_token(const std::string& ticket, int max_per_session, done<token_reservation> callback) override {
        const auto t = now();
        token_reservation out;
        if (!broker_.status(ticket, t)) return callback(store_error::none, out);
        switch (broker_.reserve_token(ticket, max_per_session, t)) {
        case session_broker::token_reservation::reserved:
            out.what = token_reservation::kind::reserved;
            out.status = *broker_.status(ticket, t);
            break;
        case session_broker::token_reservation::not_active: out.what = token_reservation::kind::not_active; break;
        case session_broker::token_reservation::limit_reached: out.what = token_reservation::kind::limit_reached; break;
        }
        after_change();
        callback(store_error::none, out);
    }

    void record_call(std::uint64_t entry_id, const std::string& call_id, done<call_recording> callback) override {
        if (!broker_.holds_slot(entry_id)) return callback(store_error::none, call_recording::not_active);
        auto& calls = calls_[entry_id];
        if (std::find(calls.begin(), calls.end(), call_id) != calls.end()) return callback(store_error::none, call_recording::recorded);
        if (calls.size() >= max_calls) return callback(store_error::none, call_recording::limit_reached);
        calls.push_back(call_id);
        // Written ahead: the call is acknowledged once it is on disk, so a crash from here on
        // still hangs it up.  The answer comes back to the strand from the writer thread.
        save_calls([strand = strand_, alive = alive_, callback = std::move(callback)]() mutable {
            net::post(strand, [alive, callback = std::move(callback)] {
                if (*alive) callback(store_error::none, call_recording::recorded);
            });
        });
    }

    void stats(done<store_stats> callback) override {
        store_stats out;
        out.sessions = broker_.active_sessions();
        out.active = broker_.active_count();
        out.queued = broker_.queue_length();
        out.limits = broker_.limits();
        out.paused = broker_.paused();
        callback(store_error::none, std::move(out));
    }

    void statuses(std::vector<std::uint64_t> entry_ids, done<std::vector<entry_status>> callback) override {
        std::vector<entry_status> out;
        const auto t = now();
        for (const auto id : entry_ids) {
            if (auto s = broker_.status(id, t)) out.push_back(std::move(*s));
        }
        callback(store_error::none, std::move(out));
    }

    void channel_opened(const std::string& ticket, done<channel_opening> callback) override {
        auto opening = broker_.channel_opened(ticket, now());
        after_change();
        callback(store_error::none, std::move(opening));
    }

    void channel_closed(std::uint64_t entry_id) override {
        broker_.channel_closed(entry_id, now());
        after_change();
    }

    void channel_heartbeat(std::uint64_t entry_id) override {
        broker_.heartbeat(entry_id, now());
        after_change();
    }

    // ---- the operator's controls ----------------------------------------------------------------

    void admin_view(done<store_admin_view> callback) override {
        store_admin_view out;
        out.paused = broker_.paused();
        out.limits = broker_.limits();
        for (const auto& e : broker_.live_entries()) {
            const auto address = addresses_.find(e.entry_id);
            const auto calls = calls_.find(e.entry_id);
            out.entries.push_back({e, address == addresses_.end() ? std::string() : address->second, instance_,
                                   calls != calls_.end() && !calls->second.empty()});
        }
        callback(store_error::none, std::move(out));
    }

    void end_session(std::uint64_t entry_id, end_reason why, done<bool> callback) override {
        const bool ended = broker_.end_session(entry_id, why, now());
        after_change();
        callback(store_error::none, ended);
    }

    void remove_queued(std::uint64_t entry_id, done<bool> callback) override {
        const bool removed = broker_.remove_queued(entry_id, now());
        after_change();
        callback(store_error::none, removed);
    }

    bool paused_by_operator() const override { return operator_.paused; }

    void set_paused(bool paused, done<bool> callback) override {
        broker_.set_paused(paused, now());
        operator_.paused = paused;
        files_.save_operator(operator_);
        after_change();
        callback(store_error::none, paused);
    }

    void change_limits(limits_change change, done<session_limits> callback) override {
        if (change.max_concurrent_users) operator_.max_concurrent_users = change.max_concurrent_users;
        if (change.session_duration) operator_.session_duration = change.session_duration;
        files_.save_operator(operator_);
        broker_.reload(with_operator(config_limits_), now());
        after_change();
        callback(store_error::none, broker_.limits());
    }

    void set_admission_gate(session_broker::admission_gate gate) override {
        broker_.set_admission_gate(std::move(gate));
        if (!held_for_gate_) return;
        held_for_gate_ = false;
        broker_.set_paused(false, clock_());  // admits the restored places the gate lets in
        broker_.take_events();                // as at start-up: they announce themselves
    }

    void recheck_admissions() override {
        broker_.recheck_admissions(now());
        after_change();
    }

    void hang_up_done(const std::string&) override {}  // nothing is kept once asked for

    void run_due_deadlines() override {
        const auto t = clock_();
        broker_.advance(t);
        std::vector<std::string> due;
        std::erase_if(orphans_, [&](const orphan_call& c) {
            if (c.hang_up_at > t) return false;
            due.push_back(c.call_id);
            return true;
        });
        if (!due.empty()) save_calls();
        after_change();
        if (listener_ && !due.empty()) listener_->on_hang_ups(std::move(due));
    }

    // A SIGHUP's limits, with the operator's runtime changes kept over them.
    void reload(const session_limits& limits) override {
        config_limits_ = limits;
        broker_.reload(with_operator(limits), now());
        after_change();
    }

    const session_limits& limits() const override { return broker_.limits(); }

    void for_each_queued_status(const std::function<void(const entry_status&)>& f) const override {
        broker_.for_each_queued_status(clock_(), f);
    }
    std::size_t active_count() const override { return broker_.active_count(); }
    std::size_t queue_length() const override { return broker_.queue_length(); }
    std::size_t entry_count() const override { return broker_.remembered(); }
    bool available() const override { return true; }
    std::optional<steady_time> stats_fresh_until() const override {
        // Nothing stats shows changes before the broker's next deadline but through an event.
        return broker_.next_deadline().value_or(steady_time::max());
    }

    // SIGTERM: every session ends (nothing could hang its calls up later), and the waiting
    // visitors' places are saved for the next start.
    void shutdown(bool end_sessions) override {
        if (end_sessions) {
            const auto waiting = broker_.close_for_restart(now());
            after_change();
            if (!waiting.empty()) files_.save_queue({waiting, wall_clock_()});
        }
        timer_.cancel();
        closed_ = true;
    }

private:
    static constexpr std::size_t max_calls = 8;

    steady_time now() const { return clock_(); }

    session_limits with_operator(session_limits limits) const {
        if (operator_.max_concurrent_users) limits.max_concurrent_users = *operator_.max_concurrent_users;
        if (operator_.session_duration) limits.session_duration = *operator_.session_duration;
        return limits;
    }

    void restore_queue() {
        const auto saved = files_.take_queue();
        if (!saved) return;
        const auto age = wall_clock_() - saved->saved_at;
        if (age < std::chrono::seconds{0} || age > restore_window(broker_.limits())) {
            spdlog::info("DATA_DIR: {} saved place(s) are too old to restore", saved->tickets.size());
            return;
        }
        for (const auto& ticket : saved->tickets) broker_.join(ticket, nullptr, clock_());
        spdlog::info("DATA_DIR: restored {} waiting visitor(s) in their order", saved->tickets.size());
    }

    // Calls recorded before a crash: their sessions are gone, their calls still cost money.
    void adopt_orphaned_calls() {
        const auto wall = wall_clock_();
        const auto t = clock_();
        for (const auto& c : files_.load_calls()) {
            const auto left = std::max(std::chrono::system_clock::duration{0}, c.hang_up_at - wall);
            orphans_.push_back({c.call_id, t + std::chrono::duration_cast<std::chrono::steady_clock::duration>(left)});
        }
        if (!orphans_.empty()) spdlog::warn("DATA_DIR: {} call(s) left by a stopped server will be hung up at their deadline", orphans_.size());
    }

    // The write-ahead list: every call of a running session, and the orphans still to hang up.
    void save_calls(std::function<void()> written = {}) {
        std::vector<pending_call> out;
        const auto wall = wall_clock_();
        const auto t = clock_();
        auto to_wall = [&](steady_time at) {
            return wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(at - t);
        };
        for (const auto& [entry_id, calls] : calls_) {
            const auto s = broker_.status(entry_id, t);
            const auto until = s && s->state == entry_state::active ? to_wall(s->expires_at) : wall;
            for (const auto& call : calls) out.push_back({call, until});
        }
        for (const auto& o : orphans_) out.push_back({o.call_id, to_wall(o.hang_up_at)});
        files_.save_calls(out, std::move(written));
    }

    // Tells the listener what the broker recorded, asks for the ended sessions' calls to be hung
    // up, and re-arms the timer at the next deadline.
    void after_change() {
        auto events = broker_.take_events();
        std::vector<std::string> hang_ups;
        for (const auto& ev : events) {
            if (ev.what != broker_event::kind::ended) continue;
            addresses_.erase(ev.entry_id);
            if (auto calls = calls_.find(ev.entry_id); calls != calls_.end()) {
                for (auto& c : calls->second) hang_ups.push_back(std::move(c));
                calls_.erase(calls);
            }
        }
        if (!hang_ups.empty()) save_calls();
        // Forgetting old ends raises no event, but the entry gauge must still follow it.
        const auto entries = broker_.remembered();
        const bool forgot = entries < entries_told_;
        entries_told_ = entries;
        if (listener_ && (!events.empty() || forgot)) listener_->on_events(events, clock_(), true);
        if (listener_ && !hang_ups.empty()) listener_->on_hang_ups(std::move(hang_ups));
        arm_timer();
    }

    std::optional<steady_time> next_deadline() const {
        auto next = broker_.next_deadline();
        for (const auto& o : orphans_) {
            if (!next || o.hang_up_at < *next) next = o.hang_up_at;
        }
        return next;
    }

    void arm_timer() {
        if (closed_) return;
        const auto next = next_deadline();
        if (next == armed_for_) return;
        armed_for_ = next;
        timer_.cancel();
        if (!next) return;
        timer_.expires_at(*next);
        timer_.async_wait([this, alive = alive_, at = *next](boost::system::error_code ec) {
            if (ec || !*alive || armed_for_ != at) return;  // cancelled, destroyed or superseded
            armed_for_.reset();
            try {
                run_due_deadlines();
            } catch (const std::exception& e) {
                spdlog::error("session store: {}; carrying on", e.what());
                arm_timer();
            }
        });
    }

    std::size_t entries_told_ = 0;  // broker_.remembered() at the last after_change()
    std::function<steady_time()> clock_;
    std::function<std::chrono::system_clock::time_point()> wall_clock_;
    restart_files files_;
    std::string instance_;
    session_limits config_limits_;
    operator_settings operator_;
    session_broker broker_;
    net::any_io_executor strand_;
    net::steady_timer timer_;
    std::shared_ptr<bool> alive_;  // the timer's handler may outlive the store
    store_listener* listener_ = nullptr;
    std::unordered_map<std::uint64_t, std::vector<std::string>> calls_;  // entry id -> upstream call ids
    std::unordered_map<std::uint64_t, std::string> addresses_;           // entry id -> client address
    std::vector<orphan_call> orphans_;
    std::optional<steady_time> armed_for_;
    bool closed_ = false;
    bool held_for_gate_ = false;  // admissions wait for the first set_admission_gate()
};

}  // namespace

std::unique_ptr<memory_store> make_memory_store(const net::any_io_executor& strand, memory_store_options options) {
    return std::make_unique<memory_store_impl>(strand, std::move(options));
}

}  // namespace voice_broker
