#include "memory_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

namespace voice_broker {

namespace net = boost::asio;

namespace {

class memory_store_impl final : public memory_store {
public:
    memory_store_impl(const net::any_io_executor& strand, const session_limits& limits, std::function<steady_time()> clock)
        : clock_(std::move(clock)), broker_(limits), timer_(strand), alive_(std::make_shared<bool>(true)) {}

    ~memory_store_impl() override {
        *alive_ = false;
        timer_.cancel();
    }

    void set_listener(store_listener* listener) override { listener_ = listener; }

    void join(join_request request, done<join_outcome> callback) override {
        const auto outcome = broker_.join(request.fresh_ticket,
                                          request.existing_ticket ? &*request.existing_ticket : nullptr, now());
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
        const auto before = broker_.status(ticket, t);
        if (!before) return callback(store_error::none, out);
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
        if (std::find(calls.begin(), calls.end(), call_id) == calls.end()) {
            if (calls.size() >= max_calls) return callback(store_error::none, call_recording::limit_reached);
            calls.push_back(call_id);
        }
        callback(store_error::none, call_recording::recorded);
    }

    void stats(done<store_stats> callback) override {
        store_stats out;
        out.sessions = broker_.active_sessions();
        out.active = broker_.active_count();
        out.queued = broker_.queue_length();
        out.limits = broker_.limits();
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

    void run_due_deadlines() override {
        broker_.advance(clock_());
        after_change();
    }

    void hang_up_done(const std::string&) override {}  // nothing is kept once asked for

    void reload(const session_limits& limits) override {
        broker_.reload(limits, now());
        after_change();
    }

    const session_limits& limits() const override { return broker_.limits(); }

    void for_each_queued_status(const std::function<void(const entry_status&)>& f) const override {
        broker_.for_each_queued_status(clock_(), f);
    }
    std::size_t active_count() const override { return broker_.active_count(); }
    bool available() const override { return true; }
    std::size_t queue_length() const override { return broker_.queue_length(); }
    std::optional<steady_time> stats_fresh_until() const override {
        // Nothing stats shows changes before the broker's next deadline but through an event.
        return broker_.next_deadline().value_or(steady_time::max());
    }

    void shutdown(bool end_sessions) override {
        if (end_sessions) {
            broker_.shutdown(now());
            after_change();
        }
        timer_.cancel();
        closed_ = true;
    }

private:
    static constexpr std::size_t max_calls = 8;

    steady_time now() const { return clock_(); }

    // Tells the listener what the broker recorded, asks for the ended sessions' calls to be hung
    // up, and re-arms the timer at the broker's next deadline.
    void after_change() {
        auto events = broker_.take_events();
        std::vector<std::string> hang_ups;
        for (const auto& ev : events) {
            if (ev.what != broker_event::kind::ended) continue;
            if (auto calls = calls_.find(ev.entry_id); calls != calls_.end()) {
                for (auto& c : calls->second) hang_ups.push_back(std::move(c));
                calls_.erase(calls);
            }
        }
        if (listener_ && !events.empty()) listener_->on_events(events, clock_(), true);
        if (listener_ && !hang_ups.empty()) listener_->on_hang_ups(std::move(hang_ups));
        arm_timer();
    }

    void arm_timer() {
        if (closed_) return;
        const auto next = broker_.next_deadline();
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

    std::function<steady_time()> clock_;
    session_broker broker_;
    net::steady_timer timer_;
    std::shared_ptr<bool> alive_;  // the timer's handler may outlive the store
    store_listener* listener_ = nullptr;
    std::unordered_map<std::uint64_t, std::vector<std::string>> calls_;  // entry id -> upstream call ids
    std::optional<steady_time> armed_for_;
    bool closed_ = false;
};

}  // namespace

std::unique_ptr<memory_store> make_memory_store(const net::any_io_executor& strand, const session_limits& limits,
                                                std::function<steady_time()> clock) {
    return std::make_unique<memory_store_impl>(strand, limits, std::move(clock));
}

}  // namespace voice_broker
