// session_broker: the heart of the product, with no I/O.
//
// It decides who holds one of the N slots, who waits in the FIFO queue, when a holder is warned
// and when a session ends.  Every call takes `now` and records what happened as events in an
// outbox, which the I/O shell (session_service) drains and turns into WebSocket pushes,
// upstream hang-ups and metrics.  Time never passes inside the broker: the shell calls
// advance(now) at next_deadline().  One owner (the service's strand) calls it; it is not
// thread-safe by itself.
#pragma once

#include "voice_broker/end_reason.hpp"
#include "voice_broker/session_limits.hpp"
#include "voice_broker/slot_schedule.hpp"
#include "voice_broker/time.hpp"
#include "voice_broker/waiting_queue.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace voice_broker {

enum class entry_state { active, queued, ended };

std::string_view to_string(entry_state s);

// What a visitor can know about their own place.
struct entry_status {
    std::string ticket;
    std::uint64_t entry_id = 0;  // the broker's id for the entry: a cheap key for the I/O shell
    entry_state state = entry_state::ended;
    std::size_t position = 0;  // 1-based, queued only
    std::size_t queue_length = 0;
    std::int64_t eta_seconds = 0;  // queued only: an upper bound on the wait
    steady_time started_at{};
    steady_time expires_at{};
    std::int64_t remaining_seconds = 0;  // active only
    // Active only: the last warning whose instant has passed (its offset before the end, one of
    // the offsets fixed at admission), 0 before the first.  Derived from the deadline and the
    // store's clock, so that every instance agrees and a page that missed the push learns of it.
    std::chrono::seconds last_warning{0};
    bool confirmed = false;
    end_reason reason = end_reason::left;  // ended only
    bool paused = false;                   // admissions are paused by the operator
};

// A live entry as the operator's console lists it.
struct live_entry {
    std::uint64_t entry_id = 0;
    entry_state state = entry_state::queued;
    std::size_t position = 0;  // queued: 1-based
    steady_time joined_at{};
    steady_time started_at{};  // active
    steady_time expires_at{};  // active
    bool connected = false;    // a live channel is open
};

// What happened, with everything the shell needs to act on it: it never asks the broker again.
struct broker_event {
    enum class kind {
        admitted,       // the entry now holds a slot; `status` is its new status
        warning,        // the entry has `seconds_left` before its end
        ended,          // the entry ended with `reason` (active or queued)
        queue_changed,  // positions or ETAs of queued entries may have changed
    };
    kind what;
    std::uint64_t entry_id = 0;  // as in entry_status; 0 for queue_changed
    std::chrono::seconds seconds_left{0};
    end_reason reason = end_reason::left;
    bool was_active = false;     // ended: the entry held a slot (a call may need hanging up)
    steady_time started_at{};    // ended + was_active: for usage accounting
    steady_time waited_since{};  // admitted: when the visitor joined (wait-time metrics)
    entry_status status{};       // admitted only
};

// What opening a live channel found.
struct channel_opening {
    enum class kind { opened, ended, unknown };
    kind what = kind::unknown;
    entry_status status;  // opened: the current status; ended: the reason
};

struct join_outcome {
    // budget_exhausted: a shared store's own budget refused a new visitor (not even one session
    // fits before the reset); the memory store never answers it (its cost guard refuses first).
    enum class kind { joined, existing, queue_full, budget_exhausted };
    kind what;
    entry_status status;  // not set for queue_full
};

struct active_summary {
    steady_time started_at;
    steady_time expires_at;
};

class session_broker {
public:
    explicit session_broker(session_limits limits);

    const session_limits& limits() const { return limits_; }

    // Joins with a freshly generated ticket, or returns the current state when `existing`
    // names a live entry (one place per visitor).
    join_outcome join(const std::string& fresh_ticket, const std::string* existing, steady_time now);

    std::optional<entry_status> status(std::string_view ticket, steady_time now) const;
    std::optional<entry_status> status(std::uint64_t entry_id, steady_time now) const;

    // The ticket of a live or recently ended entry (empty once forgotten).  The shell keys
    // everything by entry id; this is for the few places that must name the visitor.
    std::string_view ticket_of(std::uint64_t entry_id) const;

    // Proof of life without a WebSocket; also confirms a fresh admission.
    std::optional<entry_status> heartbeat(std::string_view ticket, steady_time now);
    // The same from a live channel, which knows its entry by id.
    void heartbeat(std::uint64_t entry_id, steady_time now);

    // A live channel (WebSocket) opened for this ticket, or closed for this entry.  While at least
    // one is open the entry cannot be abandoned; opening one confirms an admission.
    channel_opening channel_opened(std::string_view ticket, steady_time now);
    void channel_closed(std::uint64_t entry_id, steady_time now);

    // Ends the entry with reason "left" (active or queued).  False when unknown or already ended.
    bool leave(std::string_view ticket, steady_time now);

    // Ends every active session with reason "forced"; returns how many.
    std::size_t force_end_all(steady_time now);

    // Ends everything with reason "shutdown".
    void shutdown(steady_time now);

    // Stops for a restart: ends every session with reason "shutdown" (nothing could hang its
    // calls up later) but keeps the waiting visitors, whose places the caller saves; admits
    // nobody any more.  Returns the waiting tickets, head first.
    std::vector<std::string> close_for_restart(steady_time now);

    // Replaces the limits.  Current sessions keep their deadlines; a lower slot count lets them
    // finish instead of cutting them off.
    void reload(session_limits limits, steady_time now);

    // The operator's controls.  End one session (reason "forced", or the cost guard's "idle" and
    // "call_ended"; false unless it holds a slot), take one waiting visitor out of the queue
    // (reason "removed"; false unless it waits), pause admissions (the queue is kept and still
    // takes joins) and resume them (free slots are filled at once).
    bool end_session(std::uint64_t entry_id, end_reason why, steady_time now);
    bool remove_queued(std::uint64_t entry_id, steady_time now);
    void set_paused(bool paused, steady_time now);
    bool paused() const { return paused_; }

    // Asked before every admission, with the deadlines of the sessions already running (the
    // spend budget: will one more session fit?).  A session that ended in this same step has not
    // been booked by the listener yet: it is passed as `now + the time it ran`, so the gate counts
    // its minutes as committed (else its slot could be refilled past the budget).  False keeps
    // the queue where it is until recheck_admissions() after the gate may have opened.
    using admission_gate = std::function<bool(steady_time now, const std::vector<steady_time>& running_until)>;
    void set_admission_gate(admission_gate gate) { gate_ = std::move(gate); }
    void recheck_admissions(steady_time now);

    // Every live entry: the holders, oldest first, then the queue in order.
    std::vector<live_entry> live_entries() const;

    // Reserves one upstream key for the active holder, at most `max_per_session` per session.
    // Minting proves presence, so it also confirms a fresh admission.
    enum class token_reservation { reserved, not_active, limit_reached };
    token_reservation reserve_token(std::string_view ticket, int max_per_session, steady_time now);

    // Processes every deadline at or before now: warnings, expiries, abandonment.
    void advance(steady_time now);

    // The earliest instant at which advance() has something to do.
    std::optional<steady_time> next_deadline() const;

    // Takes the events recorded since the last call, in the order they happened.
    std::vector<broker_event> take_events();

    // Every queued entry, head first, with its ETA: one pass for a broadcast.
    std::vector<entry_status> queued_statuses(steady_time now) const;

    // The same, handed to `f` one at a time in one reused entry_status, so that a broadcast to N
    // visitors copies no ticket and allocates nothing per visitor.  `f` must not call the broker.
    template <class F>
    void for_each_queued_status(steady_time now, F&& f) const;

    std::size_t active_count() const { return active_.size(); }
    bool holds_slot(std::uint64_t entry_id) const { return active_.count(entry_id) != 0; }
    std::size_t queue_length() const { return queue_.size(); }
    // Entries the broker keeps (live ones and remembered ends).
    std::size_t remembered() const { return entries_.size(); }
    std::vector<active_summary> active_sessions() const;

private:
    struct entry {
        std::uint64_t id = 0;  // join order: smaller ids joined first
        std::string ticket;
        entry_state state = entry_state::queued;
        steady_time joined_at{};
        steady_time started_at{};
        steady_time expires_at{};
        steady_time last_seen{};
        steady_time admission_deadline{};  // meaningful while active && !confirmed
        bool confirmed = false;
        int open_channels = 0;
        std::vector<std::chrono::seconds> warning_offsets;  // fixed at admission, largest first
        std::size_t next_warning = 0;
        end_reason reason = end_reason::left;
        steady_time ended_at{};
        int tokens_minted = 0;
        std::optional<steady_time> deadline;  // mirrored in deadlines_
    };

    entry* find_live(std::string_view ticket);
    entry* find_live(std::uint64_t id);
    const entry* find(std::string_view ticket) const;
    void touch(entry& e, steady_time now);
    entry_status make_status(const entry& e, steady_time now) const;
    static std::chrono::seconds last_warning(const entry& e, steady_time now);
    slot_schedule schedule(std::size_t places, steady_time now) const;

    entry& create(const std::string& ticket, steady_time now);
    void admit(entry& e, steady_time now);
    void admit_waiting(steady_time now);
    bool gate_allows(steady_time now) const;
    void end(entry& e, end_reason why, steady_time now);
    void process(entry& e, steady_time now);
    void reindex(entry& e);
    std::optional<steady_time> compute_deadline(const entry& e) const;
    void forget_old_ended(steady_time now);
    void note_queue_changed();
    void emit(broker_event ev) { events_.push_back(std::move(ev)); }

    session_limits limits_;
    bool closed_ = false;
    bool paused_ = false;
    admission_gate gate_;
    std::uint64_t next_id_ = 1;
    // Looks tickets up by string_view without building a std::string per lookup.
    struct ticket_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view t) const { return std::hash<std::string_view>{}(t); }
    };

    std::unordered_map<std::uint64_t, entry> entries_;                                  // live and recently ended
    std::unordered_map<std::string, std::uint64_t, ticket_hash, std::equal_to<>> ids_;  // ticket -> id
    waiting_queue queue_;                                                               // FIFO by join order
    std::set<std::uint64_t> active_;                                                    // slot holders
    std::set<std::pair<steady_time, std::uint64_t>> deadlines_;  // live entries' next deadline
    std::deque<std::uint64_t> ended_;                            // tombstones, oldest first
    std::vector<broker_event> events_;
};

// How long an ended entry still answers status queries, and how many are kept at most.
inline constexpr std::chrono::minutes ended_entry_retention{10};
inline constexpr std::size_t max_ended_entries = 10000;

template <class F>
void session_broker::for_each_queued_status(steady_time now, F&& f) const {
    const auto etas = schedule(queue_.size(), now);
    entry_status s;
    s.state = entry_state::queued;
    s.queue_length = queue_.size();
    s.paused = paused_;
    std::size_t position = 0;
    for (auto id : queue_) {
        const auto& e = entries_.at(id);
        s.ticket.assign(e.ticket);  // reuses the capacity: tickets have one length
        s.entry_id = id;
        s.position = ++position;
        s.eta_seconds = etas.eta_seconds(position);
        f(static_cast<const entry_status&>(s));
    }
}

}  // namespace voice_broker
