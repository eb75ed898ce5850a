// A randomized model test of session_broker: a million random operations, each checked at once
// against a small reference model written for this test.
//
// The reference model keeps the rules in their plainest form (a vector of holders, a deque for
// the queue, a map of entries) and predicts, for every call, who must be admitted, in what
// order, who must end and why, and which warnings are due.  The broker's events are then
// compared with the prediction, and its observable state (counts, statuses, the queue, the
// next deadline) with the model's.  Time moves the way the service's timer moves it: advance()
// is called at each next_deadline() in turn, then the clock jumps to a random later instant.
//
// The seed is printed; MODEL_TEST_SEED=<n> replays a run, MODEL_TEST_OPS=<n> changes its length.
#include "voice_broker/session_broker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using kind = broker_event::kind;
using reservation = session_broker::token_reservation;

const steady_time t0 = steady_time{} + std::chrono::hours{1000};
constexpr int max_tokens = 3;

struct model_failure {
    std::string what;
};

// Stops the run at the first divergence (a million failures would help nobody).
#define MODEL_CHECK(cond, message)                                                                     \
    do {                                                                                               \
        if (!(cond)) {                                                                                 \
            std::ostringstream model_check_text;                                                       \
            model_check_text << "line " << __LINE__ << ": " #cond ": " << message;                     \
            throw model_failure{model_check_text.str()};                                               \
        }                                                                                              \
    } while (0)

long long ms_since_t0(steady_time t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t - t0).count(); }

// Whole seconds until `until`, rounded up (every instant in this test is a whole millisecond).
std::int64_t ceil_seconds(steady_time now, steady_time until) {
    if (until <= now) return 0;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
    return (ms + 999) / 1000;
}

// --- the reference model ----------------------------------------------------------------------

struct model_entry {
    std::uint64_t order = 0;  // join order
    entry_state state = entry_state::queued;
    steady_time joined_at{}, last_seen{}, started_at{}, expires_at{}, admission_deadline{}, ended_at{};
    int channels = 0;
    bool confirmed = false;
    std::vector<seconds> warnings;  // this session's, largest first
    std::size_t warned = 0;         // how many of them were delivered
    int tokens = 0;
    end_reason reason = end_reason::left;
    // What the broker reported about this entry.
    int admitted_events = 0;
    int ended_events = 0;
    // The ETA as last shown while queued, and the earliest admission time any ETA promised.
    std::optional<std::int64_t> last_eta;
    std::optional<steady_time> promised;
};

// What one call must produce.
struct expectation {
    std::vector<std::string> admitted;                        // in this order
    std::map<std::string, std::pair<end_reason, bool>> ended;  // reason, was_active
    // Queued entries found silent too long at this instant.  They end "abandoned"; the broker
    // may first admit such an entry (when a slot frees at the same instant) and end it at once,
    // which then reports was_active.
    std::set<std::string> overdue_queued;
    std::map<std::string, std::vector<seconds>> warnings;  // in this order
    bool rules_changed = false;
};

struct reference_model {
    session_limits limits;
    std::unordered_map<std::string, model_entry> entries;  // live and not yet forgotten
    std::vector<std::string> active;             // slot holders
    std::deque<std::string> queue;               // FIFO
    std::deque<std::string> tombstones;          // ended, in the order the ends were reported
    std::uint64_t next_order = 1;

    explicit reference_model(session_limits l) : limits(std::move(l)) {}

    model_entry* find(const std::string& t) {
        const auto it = entries.find(t);
        return it == entries.end() ? nullptr : &it->second;
    }
    bool live(const std::string& t) {
        const auto* e = find(t);
        return e && e->state != entry_state::ended;
    }

    std::vector<seconds> session_warnings() const {
        std::vector<seconds> w;
        for (auto s : limits.warnings) {
            if (s > 0s && s < limits.session_duration) w.push_back(s);
        }
        std::sort(w.begin(), w.end(), std::greater<>());
        w.erase(std::unique(w.begin(), w.end()), w.end());
        return w;
    }

    void admit(const std::string& t, steady_time now, expectation& x) {
        auto& e = entries.at(t);
        e.state = entry_state::active;
        e.started_at = now;
        e.expires_at = now + limits.session_duration;
        e.admission_deadline = now + limits.admission_grace;
        e.warnings = session_warnings();
        e.warned = 0;
        if (e.channels > 0) e.confirmed = true;
        active.push_back(t);
        x.admitted.push_back(t);
    }

    void admit_waiting(steady_time now, expectation& x) {
        while (active.size() < limits.max_concurrent_users && !queue.empty()) {
            const auto t = queue.front();
            queue.pop_front();
            admit(t, now, x);
        }
    }

    void end(const std::string& t, end_reason why, steady_time now, expectation& x) {
        auto& e = entries.at(t);
        const bool was_active = e.state == entry_state::active;
        if (was_active) active.erase(std::find(active.begin(), active.end(), t));
        else queue.erase(std::find(queue.begin(), queue.end(), t));
        e.state = entry_state::ended;
        e.reason = why;
        e.ended_at = now;
        x.ended[t] = {why, was_active};
    }

    join_outcome::kind join(const std::string& fresh, const std::string* existing, steady_time now, expectation& x,
                            std::string& ticket) {
        if (existing && live(*existing)) {
            auto& e = entries.at(*existing);
            e.last_seen = now;
            if (e.state == entry_state::active) e.confirmed = true;
            ticket = *existing;
            return join_outcome::kind::existing;
        }
        const bool slot_free = active.size() < limits.max_concurrent_users;
        if (!slot_free && queue.size() >= limits.max_queue_length) return join_outcome::kind::queue_full;
        auto& e = entries[fresh];
        e.order = next_order++;
        e.joined_at = now;
        e.last_seen = now;
        ticket = fresh;
        if (slot_free) {
            MODEL_CHECK(queue.empty(), "the model let a slot stay free while people wait");
            e.confirmed = true;
            admit(fresh, now, x);
        } else {
            queue.push_back(fresh);
        }
        return join_outcome::kind::joined;
    }

    bool heartbeat(const std::string& t, steady_time now) {
        if (!live(t)) return false;
        auto& e = entries.at(t);
        e.last_seen = now;
        if (e.state == entry_state::active) e.confirmed = true;
        return true;
    }

    bool channel_opened(const std::string& t, steady_time now) {
        if (!live(t)) return false;
        auto& e = entries.at(t);
        ++e.channels;
        e.last_seen = now;
        if (e.state == entry_state::active) e.confirmed = true;
        return true;
    }

    void channel_closed(const std::string& t, steady_time now) {
        if (!live(t) || entries.at(t).channels == 0) return;
        auto& e = entries.at(t);
        --e.channels;
        e.last_seen = now;
    }

    bool leave(const std::string& t, steady_time now, expectation& x) {
        if (!live(t)) return false;
        end(t, end_reason::left, now, x);
        admit_waiting(now, x);
        return true;
    }

    std::size_t force_end_all(steady_time now, expectation& x) {
        const auto holders = active;
        for (const auto& t : holders) end(t, end_reason::forced, now, x);
        admit_waiting(now, x);
        return holders.size();
    }

    void shutdown(steady_time now, expectation& x) {
        for (const auto& t : std::vector<std::string>(active)) end(t, end_reason::shutdown, now, x);
        for (const auto& t : std::vector<std::string>(queue.begin(), queue.end())) end(t, end_reason::shutdown, now, x);
    }

    reservation reserve_token(const std::string& t, steady_time now) {
        if (!live(t)) return reservation::not_active;
        auto& e = entries.at(t);
        if (e.state != entry_state::active || now >= e.expires_at) return reservation::not_active;
        if (e.tokens >= max_tokens) return reservation::limit_reached;
        ++e.tokens;
        e.confirmed = true;
        e.last_seen = now;
        return reservation::reserved;
    }

    void reload(session_limits l, steady_time now, expectation& x) {
        limits = std::move(l);
        x.rules_changed = true;
        advance(now, x);
    }

    // Everything due at or before `now`: an end beats a warning, an expiry beats abandonment.
    void advance(steady_time now, expectation& x) {
        for (const auto& t : std::vector<std::string>(active)) {
            auto& e = entries.at(t);
            if (now >= e.expires_at) {
                MODEL_CHECK(e.warned == e.warnings.size(),
                            t << " expired after " << e.warned << " of " << e.warnings.size() << " warnings");
                end(t, end_reason::expired, now, x);
            } else if ((!e.confirmed && now >= e.admission_deadline) ||
                       (e.channels == 0 && now >= e.last_seen + limits.heartbeat_timeout)) {
                end(t, end_reason::abandoned, now, x);
            } else {
                while (e.warned < e.warnings.size() && e.expires_at - e.warnings[e.warned] <= now) {
                    x.warnings[t].push_back(e.warnings[e.warned]);
                    ++e.warned;
                }
            }
        }
        for (const auto& t : std::vector<std::string>(queue.begin(), queue.end())) {
            const auto& e = entries.at(t);
            if (e.channels == 0 && now >= e.last_seen + limits.heartbeat_timeout) {
                x.overdue_queued.insert(t);
                end(t, end_reason::abandoned, now, x);
            }
        }
        admit_waiting(now, x);
    }

    // Drops ended entries kept too long (or too many); returns the forgotten tickets.
    std::vector<std::string> forget(steady_time now) {
        std::vector<std::string> gone;
        while (!tombstones.empty()) {
            const auto& e = entries.at(tombstones.front());
            if (tombstones.size() <= max_ended_entries && now < e.ended_at + ended_entry_retention) break;
            MODEL_CHECK(e.ended_events == 1, tombstones.front() << " ended " << e.ended_events << " times");
            gone.push_back(tombstones.front());
            entries.erase(tombstones.front());
            tombstones.pop_front();
        }
        return gone;
    }

    std::optional<steady_time> next_deadline() const {
        std::optional<steady_time> at;
        auto consider = [&at](steady_time t) {
            if (!at || t < *at) at = t;
        };
        for (const auto& t : active) {
            const auto& e = entries.at(t);
            consider(e.expires_at);
            if (e.warned < e.warnings.size()) consider(e.expires_at - e.warnings[e.warned]);
            if (!e.confirmed) consider(e.admission_deadline);
            if (e.channels == 0) consider(e.last_seen + limits.heartbeat_timeout);
        }
        for (const auto& t : queue) {
            const auto& e = entries.at(t);
            if (e.channels == 0) consider(e.last_seen + limits.heartbeat_timeout);
        }
        if (!tombstones.empty()) consider(entries.at(tombstones.front()).ended_at + ended_entry_retention);
        return at;
    }
};

// --- the run ----------------------------------------------------------------------------------

struct run_stats {
    std::uint64_t operations = 0, broker_calls = 0, epochs = 1;
    std::uint64_t joined = 0, existing = 0, queue_full = 0, admissions = 0, overdue_admissions = 0;
    std::uint64_t warnings = 0, forgotten = 0, reloads = 0, eta_checked_admissions = 0;
    std::uint64_t reserved = 0, limit_reached = 0, not_active = 0;
    std::uint64_t ends[5] = {};
    std::size_t max_active = 0, max_queue = 0;
};

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    return std::strtoull(v, nullptr, 10);
}

class model_run {
public:
    explicit model_run(std::uint64_t seed) : rng_(seed), model_(random_limits()) {
        broker_ = std::make_unique<session_broker>(model_.limits);
        tickets_by_id_.clear();  // a new broker numbers its entries from 1 again
        ids_by_ticket_.clear();
    }

    void run(std::uint64_t operations) {
        for (stats_.operations = 0; stats_.operations < operations; ++stats_.operations) one_operation();
        shutdown_epoch();
    }

    const run_stats& stats() const { return stats_; }

    // The last calls, for the failure message.
    std::string recent() const {
        std::string out;
        for (const auto& t : trail_) {
            out += "  #" + std::to_string(t.operation) + " t=" + std::to_string(ms_since_t0(t.at)) + "ms " + t.what + " " +
                   t.detail + "\n";
        }
        return out;
    }

private:
    int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

    session_limits random_limits() {
        session_limits l;
        l.max_concurrent_users = static_cast<std::size_t>(uniform(1, 4));
        l.max_queue_length = static_cast<std::size_t>(uniform(0, 8));
        const int shape = uniform(0, 9);
        l.session_duration = seconds{shape < 3 ? uniform(1, 20) : shape < 7 ? uniform(20, 120) : uniform(120, 600)};
        l.warnings.clear();
        for (int i = uniform(0, 4); i > 0; --i) {
            l.warnings.push_back(seconds{uniform(1, static_cast<int>(l.session_duration.count() * 13 / 10) + 1)});
        }
        l.heartbeat_timeout = seconds{uniform(2, 90)};
        l.admission_grace = seconds{uniform(1, 40)};
        return l;
    }

    struct trail_entry {
        std::uint64_t operation;
        steady_time at;
        const char* what;
        std::string detail;
    };

    void note(const char* what, std::string detail = {}) {
        if (trail_.size() == 40) trail_.pop_front();
        trail_.push_back({stats_.operations, now_, what, std::move(detail)});
    }

    std::string fresh_ticket() { return "k" + std::to_string(++fresh_counter_); }

    // A live ticket most of the time, else an ended, a forgotten or a never-issued one.
    std::string pick_ticket() {
        const int r = uniform(0, 99);
        const auto live = model_.active.size() + model_.queue.size();
        if (r < 75 && live > 0) {
            const auto i = static_cast<std::size_t>(uniform(0, static_cast<int>(live) - 1));
            return i < model_.active.size() ? model_.active[i] : model_.queue[i - model_.active.size()];
        }
        if (r < 90 && !model_.tombstones.empty()) {
            return model_.tombstones[static_cast<std::size_t>(uniform(0, static_cast<int>(model_.tombstones.size()) - 1))];
        }
        if (r < 97 && !forgotten_.empty()) {
            return forgotten_[static_cast<std::size_t>(uniform(0, static_cast<int>(forgotten_.size()) - 1))];
        }
        return "never-issued-" + std::to_string(uniform(0, 9));
    }

    void one_operation() {
        const int roll = uniform(0, 99999);
        if (roll < 14000) return op_join();
        if (roll < 21000) return op_rejoin();
        if (roll < 26000) return op_leave();
        if (roll < 43000) return op_heartbeat();
        if (roll < 51000) return op_channel_opened();
        if (roll < 56000) return op_channel_closed();
        if (roll < 83000) return op_pass_time();
        if (roll < 91000) return op_reserve_token();
        if (roll < 99000) return op_status();
        if (roll < 99300) return op_force_end_all();
        if (roll < 99980) return op_reload();
        return shutdown_epoch();
    }

    // Runs one call on the model and on the broker, then compares what each says happened.
    template <class OnModel, class OnBroker>
    void perform(OnModel&& on_model, OnBroker&& on_broker, bool forgets = false) {
        const auto active_before = model_.active.size();
        expectation x;
        on_model(x);
        on_broker();
        ++stats_.broker_calls;
        const auto events = broker_->take_events();
        check_events(x, events, active_before);
        if (forgets) {
            for (auto& t : model_.forget(now_)) {
                ++stats_.forgotten;
                if (forgotten_.size() == 64) forgotten_.pop_front();
                forgotten_.push_back(std::move(t));
            }
        }
        if (x.rules_changed) {
            for (auto& [t, e] : model_.entries) e.last_eta.reset(), e.promised.reset();
        }
        // The queue's ETAs can only have moved when time passed or something happened; otherwise
        // they are compared on one call in four, to keep a million operations fast.
        const bool eta_may_move = !events.empty() || now_ != eta_checked_at_ || x.rules_changed;
        check_state(eta_may_move || uniform(0, 3) == 0);
    }

    void op_join() {
        const auto fresh = fresh_ticket();
        note("join", fresh);
        join_with(fresh, nullptr);
    }

    void op_rejoin() {
        const auto fresh = fresh_ticket();
        const auto existing = pick_ticket();
        note("join with existing", existing + " (fresh " + fresh + ")");
        join_with(fresh, &existing);
    }

    void join_with(const std::string& fresh, const std::string* existing) {
        join_outcome::kind want{};
        std::string ticket;
        join_outcome got{};
        perform([&](expectation& x) { want = model_.join(fresh, existing, now_, x, ticket); },
                [&] {
                    got = broker_->join(fresh, existing, now_);
                    if (got.what == join_outcome::kind::joined) {  // before the events are checked
                        tickets_by_id_[got.status.entry_id] = fresh;
                        ids_by_ticket_[fresh] = got.status.entry_id;
                    }
                });
        MODEL_CHECK(got.what == want, "join answered " << static_cast<int>(got.what) << ", the model says "
                                                       << static_cast<int>(want));
        switch (want) {
        case join_outcome::kind::queue_full:
            ++stats_.queue_full;
            MODEL_CHECK(!broker_->status(fresh, now_), "a refused visitor got an entry");
            return;
        case join_outcome::kind::existing:
            ++stats_.existing;
            MODEL_CHECK(!broker_->status(fresh, now_), "a second entry for one visitor");
            break;
        case join_outcome::kind::joined:
            ++stats_.joined;
            break;
        case join_outcome::kind::budget_exhausted:  // a shared store's answer: the model never expects it
            MODEL_CHECK(false, "the broker answered budget_exhausted");
            return;
        }
        compare_status(got.status, ticket, "join");
    }

    void op_leave() {
        const auto t = pick_ticket();
        note("leave", t);
        bool want = false, got = false;
        perform([&](expectation& x) { want = model_.leave(t, now_, x); }, [&] { got = broker_->leave(t, now_); });
        MODEL_CHECK(got == want, "leave(" << t << ") answered " << got);
    }

    void op_heartbeat() {
        const auto t = pick_ticket();
        note("heartbeat", t);
        std::optional<entry_status> got;
        perform([&](expectation&) { model_.heartbeat(t, now_); }, [&] { got = broker_->heartbeat(t, now_); });
        compare_status(got, t, "heartbeat");
    }

    void op_channel_opened() {
        const auto t = pick_ticket();
        note("channel_opened", t);
        bool want = false, got = false;
        perform([&](expectation&) { want = model_.channel_opened(t, now_); },
                [&] { got = broker_->channel_opened(t, now_).what == channel_opening::kind::opened; });
        MODEL_CHECK(got == want, "channel_opened(" << t << ") answered " << got);
    }

    void op_channel_closed() {
        const auto t = pick_ticket();
        note("channel_closed", t);
        perform([&](expectation&) { model_.channel_closed(t, now_); }, [&] {
            if (const auto id = ids_by_ticket_.find(t); id != ids_by_ticket_.end()) broker_->channel_closed(id->second, now_);
        });
    }

    void op_reserve_token() {
        const auto t = pick_ticket();
        note("reserve_token", t);
        reservation want{}, got{};
        perform([&](expectation&) { want = model_.reserve_token(t, now_); },
                [&] { got = broker_->reserve_token(t, max_tokens, now_); });
        MODEL_CHECK(got == want, "reserve_token(" << t << ") answered " << static_cast<int>(got) << ", the model says "
                                                  << static_cast<int>(want));
        if (got == reservation::reserved) ++stats_.reserved;
        if (got == reservation::limit_reached) ++stats_.limit_reached;
        if (got == reservation::not_active) ++stats_.not_active;
    }

    void op_status() {
        const auto t = pick_ticket();
        note("status", t);
        compare_status(broker_->status(t, now_), t, "status");
        ++stats_.broker_calls;
    }

    void op_force_end_all() {
        note("force_end_all");
        std::size_t want = 0, got = 0;
        perform([&](expectation& x) { want = model_.force_end_all(now_, x); },
                [&] { got = broker_->force_end_all(now_); });
        MODEL_CHECK(got == want, "force_end_all ended " << got << ", the model says " << want);
    }

    void op_reload() {
        auto l = random_limits();
        note("reload", "slots=" + std::to_string(l.max_concurrent_users) + " queue=" + std::to_string(l.max_queue_length) +
             " session=" + std::to_string(l.session_duration.count()) + "s heartbeat=" +
             std::to_string(l.heartbeat_timeout.count()) + "s grace=" + std::to_string(l.admission_grace.count()) + "s");
        ++stats_.reloads;
        perform([&](expectation& x) { model_.reload(l, now_, x); }, [&] { broker_->reload(l, now_); }, true);
    }

    // The clock jumps forward; on the way, advance() runs at every deadline, as the timer does.
    void op_pass_time() {
        const int shape = uniform(0, 19);
        const int step_ms = shape < 14 ? uniform(0, 1000) : shape < 19 ? uniform(0, 10000) : uniform(0, 120000);
        const auto target = now_ + std::chrono::milliseconds{step_ms};
        note("pass ms", std::to_string(step_ms));
        for (int guard = 0;; ++guard) {
            MODEL_CHECK(guard < 100000, "advance() does not get past " << ms_since_t0(now_) << "ms");
            const auto next = broker_->next_deadline();
            if (!next || *next > target) break;
            MODEL_CHECK(*next >= now_, "a deadline in the past: " << ms_since_t0(*next) << "ms");
            now_ = *next;
            note("advance");
            perform([&](expectation& x) { model_.advance(now_, x); }, [&] { broker_->advance(now_); }, true);
        }
        now_ = target;
        if (uniform(0, 3) == 0) {  // nothing is due before the next deadline, so nothing may happen
            perform([&](expectation& x) { model_.advance(now_, x); }, [&] { broker_->advance(now_); }, true);
        }
    }

    void shutdown_epoch() {
        note("shutdown");
        perform([&](expectation& x) { model_.shutdown(now_, x); }, [&] { broker_->shutdown(now_); });
        MODEL_CHECK(broker_->join(fresh_ticket(), nullptr, now_).what == join_outcome::kind::queue_full,
                    "a join was accepted after shutdown");
        MODEL_CHECK(broker_->take_events().empty(), "events after shutdown");
        for (const auto& [t, e] : model_.entries) {
            MODEL_CHECK(e.state == entry_state::ended && e.ended_events == 1,
                        t << " is not ended exactly once at shutdown (" << e.ended_events << ")");
            MODEL_CHECK(e.admitted_events <= 1, t << " was admitted " << e.admitted_events << " times");
        }
        // A fresh server on the same clock.
        ++stats_.epochs;
        model_ = reference_model(random_limits());
        broker_ = std::make_unique<session_broker>(model_.limits);
        tickets_by_id_.clear();  // a new broker numbers its entries from 1 again
        ids_by_ticket_.clear();
        last_admitted_order_ = 0;
        forgotten_.clear();
    }

    void check_events(const expectation& x, const std::vector<broker_event>& events, std::size_t active_before) {
        std::size_t running = active_before;
        std::size_t next_admitted = 0;
        std::map<std::string, std::size_t> warned;
        std::set<std::string> overdue_admitted, ended;
        bool queue_changed = false, moved = false;
        for (const auto& ev : events) {
            const std::string ticket = ev.what == kind::queue_changed ? std::string() : tickets_by_id_.at(ev.entry_id);
            switch (ev.what) {
            case kind::admitted: {
                auto* e = model_.find(ticket);
                MODEL_CHECK(e, "admitted an unknown ticket " << ticket);
                MODEL_CHECK(running < model_.limits.max_concurrent_users,
                            "admitted " << ticket << " while " << running << " of "
                                        << model_.limits.max_concurrent_users << " slots were taken");
                ++running;
                stats_.max_active = std::max(stats_.max_active, running);
                MODEL_CHECK(e->order > last_admitted_order_, "FIFO broken: " << ticket << " admitted after a later joiner");
                last_admitted_order_ = e->order;
                MODEL_CHECK(++e->admitted_events == 1, ticket << " admitted twice");
                MODEL_CHECK(ev.waited_since == e->joined_at, "admitted event for " << ticket << " has the wrong join time");
                if (x.overdue_queued.count(ticket)) {
                    overdue_admitted.insert(ticket);
                    ++stats_.overdue_admissions;
                } else {
                    MODEL_CHECK(next_admitted < x.admitted.size() && x.admitted[next_admitted] == ticket,
                                "admitted " << ticket << ", the model admits "
                                            << (next_admitted < x.admitted.size() ? x.admitted[next_admitted] : "nobody"));
                    ++next_admitted;
                }
                if (e->promised) {
                    MODEL_CHECK(now_ <= *e->promised, ticket << " admitted at " << ms_since_t0(now_)
                                                                << "ms, later than an ETA promised ("
                                                                << ms_since_t0(*e->promised) << "ms)");
                    ++stats_.eta_checked_admissions;
                }
                ++stats_.admissions;
                moved = true;
                break;
            }
            case kind::warning: {
                const auto it = x.warnings.find(ticket);
                auto& i = warned[ticket];
                MODEL_CHECK(!ended.count(ticket), "warning after the end of " << ticket);
                MODEL_CHECK(it != x.warnings.end() && i < it->second.size() && it->second[i] == ev.seconds_left,
                            "unexpected warning " << ev.seconds_left.count() << "s for " << ticket);
                ++i;
                ++stats_.warnings;
                break;
            }
            case kind::ended: {
                const auto it = x.ended.find(ticket);
                MODEL_CHECK(it != x.ended.end(), "unexpected end of " << ticket << " (" << to_string(ev.reason) << ")");
                auto* e = model_.find(ticket);
                MODEL_CHECK(++e->ended_events == 1, ticket << " ended twice");
                const bool overdue = overdue_admitted.count(ticket) > 0;
                MODEL_CHECK(ev.reason == it->second.first, ticket << " ended " << to_string(ev.reason)
                                                                     << ", the model says " << to_string(it->second.first));
                MODEL_CHECK(ev.was_active == (it->second.second || overdue), ticket << " was_active=" << ev.was_active);
                if (ev.was_active) {
                    MODEL_CHECK(running > 0, "more ends than holders");
                    --running;
                    MODEL_CHECK(ev.started_at == (overdue ? now_ : e->started_at), "ended event of " << ticket
                                                                                           << " has the wrong start");
                }
                ended.insert(ticket);
                model_.tombstones.push_back(ticket);
                ++stats_.ends[static_cast<int>(ev.reason)];
                moved = true;
                break;
            }
            case kind::queue_changed:
                queue_changed = true;
                break;
            }
        }
        MODEL_CHECK(next_admitted == x.admitted.size(), "the broker admitted " << next_admitted << " of the "
                                                                                << x.admitted.size() << " due");
        for (const auto& [t, w] : x.warnings) {
            MODEL_CHECK(warned[t] == w.size(), t << " got " << warned[t] << " of " << w.size() << " due warnings");
        }
        MODEL_CHECK(ended.size() == x.ended.size(), "the broker ended " << ended.size() << ", the model " << x.ended.size());
        for (const auto& t : overdue_admitted) MODEL_CHECK(ended.count(t), t << " was admitted though overdue, and kept");
        MODEL_CHECK(running == model_.active.size(), "holders after the events: " << running << ", model "
                                                                                   << model_.active.size());
        if (!model_.queue.empty() && (moved || x.rules_changed)) {
            MODEL_CHECK(queue_changed, "the queue moved but no queue_changed event was recorded");
        }
    }

    void compare_status(const std::optional<entry_status>& got, const std::string& t, const char* from) {
        auto* e = model_.find(t);
        if (!e) {
            MODEL_CHECK(!got, from << ": a status for forgotten or unknown " << t);
            return;
        }
        MODEL_CHECK(got, from << ": no status for " << t);
        MODEL_CHECK(got->ticket == t, from << ": status names " << got->ticket << " instead of " << t);
        MODEL_CHECK(got->state == e->state, from << ": " << t << " is " << to_string(got->state) << ", the model says "
                                                 << to_string(e->state));
        MODEL_CHECK(got->queue_length == model_.queue.size(), from << ": queue_length");
        switch (e->state) {
        case entry_state::active:
            MODEL_CHECK(got->started_at == e->started_at && got->expires_at == e->expires_at, from << ": times of " << t);
            MODEL_CHECK(got->remaining_seconds == ceil_seconds(now_, e->expires_at), from << ": remaining of " << t);
            MODEL_CHECK(got->confirmed == e->confirmed, from << ": confirmed of " << t);
            break;
        case entry_state::queued: {
            const auto pos = static_cast<std::size_t>(std::find(model_.queue.begin(), model_.queue.end(), t) -
                                                      model_.queue.begin()) + 1;
            MODEL_CHECK(got->position == pos, from << ": " << t << " at position " << got->position << ", model " << pos);
            break;
        }
        case entry_state::ended:
            MODEL_CHECK(got->reason == e->reason, from << ": reason of " << t);
            break;
        }
    }

    void check_state(bool check_queue) {
        MODEL_CHECK(broker_->active_count() == model_.active.size(), "active " << broker_->active_count() << ", model "
                                                                                << model_.active.size());
        MODEL_CHECK(model_.active.size() >= model_.limits.max_concurrent_users || model_.queue.empty(),
                    "people wait while slots are free");
        MODEL_CHECK(broker_->queue_length() == model_.queue.size(), "queued " << broker_->queue_length() << ", model "
                                                                               << model_.queue.size());
        const auto want_deadline = model_.next_deadline();
        const auto got_deadline = broker_->next_deadline();
        MODEL_CHECK(got_deadline == want_deadline,
                    "next_deadline " << (got_deadline ? ms_since_t0(*got_deadline) : -1) << "ms, model "
                                     << (want_deadline ? ms_since_t0(*want_deadline) : -1) << "ms");
        stats_.max_queue = std::max(stats_.max_queue, model_.queue.size());

        for (const auto& t : model_.active) compare_status(broker_->status(t, now_), t, "holder");
        if (check_queue) check_queue_and_etas();
        if (!model_.tombstones.empty()) {
            const auto& t = model_.tombstones[static_cast<std::size_t>(uniform(0, static_cast<int>(model_.tombstones.size()) - 1))];
            compare_status(broker_->status(t, now_), t, "ended");
        }
        if (!forgotten_.empty()) {
            const auto& t = forgotten_[static_cast<std::size_t>(uniform(0, static_cast<int>(forgotten_.size()) - 1))];
            MODEL_CHECK(!broker_->status(t, now_), "forgotten " << t << " still answers");
        }
    }

    // The queue in order, and every ETA: never growing while the rules stay, and an upper bound
    // on the admission time (checked when the admission comes).
    void check_queue_and_etas() {
        eta_checked_at_ = now_;
        const auto queued = broker_->queued_statuses(now_);
        MODEL_CHECK(queued.size() == model_.queue.size(), "queued_statuses lists " << queued.size());
        for (std::size_t i = 0; i < queued.size(); ++i) {
            const auto& s = queued[i];
            MODEL_CHECK(s.ticket == model_.queue[i], "queue order: " << s.ticket << " at " << i + 1 << ", model "
                                                                     << model_.queue[i]);
            MODEL_CHECK(s.position == i + 1 && s.queue_length == queued.size(), "queued_statuses positions");
            MODEL_CHECK(s.eta_seconds >= 0, "negative ETA");
            auto& e = model_.entries.at(s.ticket);
            if (e.last_eta) {
                MODEL_CHECK(s.eta_seconds <= *e.last_eta, "ETA of " << s.ticket << " grew from " << *e.last_eta << " to "
                                                                    << s.eta_seconds);
            }
            e.last_eta = s.eta_seconds;
            const auto bound = now_ + seconds{s.eta_seconds};
            if (!e.promised || bound < *e.promised) e.promised = bound;
        }
        if (!queued.empty()) {  // status() and queued_statuses() agree
            const auto& s = queued[static_cast<std::size_t>(uniform(0, static_cast<int>(queued.size()) - 1))];
            const auto one = broker_->status(s.ticket, now_);
            compare_status(one, s.ticket, "queued");
            MODEL_CHECK(one->eta_seconds == s.eta_seconds, "status() and queued_statuses() disagree on the ETA");
        }
    }

    std::mt19937_64 rng_;
    reference_model model_;
    std::unique_ptr<session_broker> broker_;
    steady_time now_ = t0;
    steady_time eta_checked_at_{};
    run_stats stats_;
    std::uint64_t fresh_counter_ = 0;
    std::uint64_t last_admitted_order_ = 0;
    std::deque<std::string> forgotten_;  // recently forgotten tickets, to ask about again
    // Events name entries by id: the harness keeps the ticket each id was joined with.
    std::unordered_map<std::uint64_t, std::string> tickets_by_id_;
    std::unordered_map<std::string, std::uint64_t> ids_by_ticket_;
    std::deque<trail_entry> trail_;
};

TEST(session_broker_model, a_million_random_operations_agree_with_the_reference_model) {
    const auto seed = env_number("MODEL_TEST_SEED", 20251124);
    const auto operations = env_number("MODEL_TEST_OPS", 1000000);
    std::printf("model test: MODEL_TEST_SEED=%llu MODEL_TEST_OPS=%llu\n", static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(operations));
    RecordProperty("seed", std::to_string(seed));

    const auto started = std::chrono::steady_clock::now();
    model_run run(seed);
    try {
        run.run(operations);
    } catch (const model_failure& f) {
        FAIL() << "seed " << seed << ", after operation " << run.stats().operations << ": " << f.what
               << "\nlast calls:\n"
               << run.recent() << "replay with MODEL_TEST_SEED=" << seed;
    }
    const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    const auto& s = run.stats();
    std::printf("model test: %llu operations (%llu broker calls) in %.1f s over %llu server lifetimes\n",
                static_cast<unsigned long long>(s.operations), static_cast<unsigned long long>(s.broker_calls), elapsed,
                static_cast<unsigned long long>(s.epochs));
    std::printf("  joins %llu, existing %llu, queue_full %llu, admissions %llu (overdue %llu), warnings %llu\n",
                static_cast<unsigned long long>(s.joined), static_cast<unsigned long long>(s.existing),
                static_cast<unsigned long long>(s.queue_full), static_cast<unsigned long long>(s.admissions),
                static_cast<unsigned long long>(s.overdue_admissions), static_cast<unsigned long long>(s.warnings));
    std::printf("  ends: expired %llu, left %llu, forced %llu, abandoned %llu, shutdown %llu; forgotten %llu\n",
                static_cast<unsigned long long>(s.ends[0]), static_cast<unsigned long long>(s.ends[1]),
                static_cast<unsigned long long>(s.ends[2]), static_cast<unsigned long long>(s.ends[3]),
                static_cast<unsigned long long>(s.ends[4]), static_cast<unsigned long long>(s.forgotten));
    std::printf("  tokens reserved %llu, limit %llu, not active %llu; reloads %llu; ETA-checked admissions %llu; "
                "max active %zu, max queue %zu\n",
                static_cast<unsigned long long>(s.reserved), static_cast<unsigned long long>(s.limit_reached),
                static_cast<unsigned long long>(s.not_active), static_cast<unsigned long long>(s.reloads),
                static_cast<unsigned long long>(s.eta_checked_admissions), s.max_active, s.max_queue);

    // A run that never reached a rule proves nothing about it.
    if (operations >= 100000) {
        for (int r = 0; r < 5; ++r) EXPECT_GT(s.ends[r], 0u) << "no end with reason " << to_string(static_cast<end_reason>(r));
        EXPECT_GT(s.warnings, 0u);
        EXPECT_GT(s.queue_full, 0u);
        EXPECT_GT(s.existing, 0u);
        EXPECT_GT(s.forgotten, 0u);
        EXPECT_GT(s.limit_reached, 0u);
        EXPECT_GT(s.eta_checked_admissions, 0u);
        EXPECT_GT(s.reloads, 0u);
        EXPECT_GT(s.max_queue, 4u);
        EXPECT_GT(s.max_active, 2u);
    }
}

}  // namespace
}  // namespace voice_broker
