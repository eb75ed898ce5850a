// session_store: where the visitors' shared state lives.  memory_store keeps it in this process
// (one instance, session_broker on the service's strand); redis_store keeps it in Redis, where
// any number of instances share one truth.  The rules (slots, FIFO queue, deadlines, warnings)
// are the same; only where the state lives and how a change is made atomic differ.
//
// Threading: a store lives on the session service's strand.  Call it there; it answers there,
// through the callback of each operation: the memory store at once (inside the call), the Redis
// store when its script has answered.  A callback is never run after the store is destroyed (it
// is destroyed unrun: a responder inside it then answers 500 by itself).  What happens (admissions, warnings, ends, queue moves,
// on this instance or another) reaches the store_listener, before the callback of the operation
// that caused it, so that nobody is told of a change before the pushes that announce it.
#pragma once

#include "voice_broker/session_broker.hpp"
#include "voice_broker/shared_budget.hpp"
#include "voice_broker/session_limits.hpp"
#include "voice_broker/time.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace voice_broker {

// Why a store could not do what was asked.  `unavailable`: the shared store cannot be reached
// (or a write's fate is uncertain); the caller answers 503 store_unavailable and retries later.
enum class store_error { none, unavailable };

struct join_request {
    std::string fresh_ticket;                   // the ticket a new visitor gets
    std::optional<std::string> existing_ticket; // the visitor's own, if they sent one
    std::string client_address;
};

// One upstream use (a key or a relayed call) reserved for the holder, or why not.
struct token_reservation {
    enum class kind { reserved, unknown, not_active, limit_reached };
    kind what = kind::unknown;
    entry_status status;  // reserved: the holder's status (time left, entry id)
};

enum class call_recording { recorded, unknown, not_active, limit_reached };

// Today's use (UTC) as a shared store counts it, for every instance together.
struct shared_usage {
    std::uint64_t sessions_started = 0;
    std::uint64_t sessions_completed = 0;
    std::chrono::milliseconds talked{0};  // of the sessions completed today
};

// What the stats answer shows.
struct store_stats {
    std::vector<active_summary> sessions;
    std::size_t active = 0;
    std::size_t queued = 0;
    session_limits limits;
    bool paused = false;
    std::optional<shared_usage> today;       // a shared store's own count (the memory store: none)
    std::vector<std::string> instances;      // instances seen in the last seconds (shared store)
};

// A live entry as the operator's console shows it.
struct admin_entry {
    live_entry entry;
    std::string client_address;  // as the visitor joined (not masked here)
    std::string instance;        // the instance that admitted it (or where it joined)
    bool call_connected = false;  // an upstream call is registered for the session
};

struct store_instance {
    std::string id;
    std::int64_t last_seen_ms_ago = 0;
    std::size_t connections = 0;
};

// Everything the console shows of the shared state.
struct store_admin_view {
    std::vector<admin_entry> entries;  // the holders, oldest first, then the queue in order
    bool paused = false;
    session_limits limits;
    std::vector<store_instance> instances;  // a shared store's; the memory store: none
    std::optional<shared_usage> today;
};

// The operator's changes of the rules: either may be left out.
struct limits_change {
    std::optional<std::size_t> max_concurrent_users;
    std::optional<std::chrono::seconds> session_duration;
};

// Told of everything that happens, on the service's strand.
class store_listener {
public:
    virtual ~store_listener() = default;
    // Events in the order they happened; `at` is when (this process's steady clock).  Every
    // instance hears of every event (its visitors' pages need the pushes); `caused_here` says
    // whether this instance made the change, so that counters and logs count it once.
    virtual void on_events(const std::vector<broker_event>& events, steady_time at, bool caused_here) = 0;
    // Upstream calls to end now (their session ended); report each with hang_up_done().
    virtual void on_hang_ups(std::vector<std::string> call_ids) = 0;
    // Pushes may have been lost (the store reconnected): re-push every open channel's status.
    virtual void on_resync() = 0;
};

class session_store {
public:
    template <class T>
    using done = std::function<void(store_error, T)>;

    virtual ~session_store() = default;

    virtual void set_listener(store_listener* listener) = 0;

    virtual void join(join_request request, done<join_outcome> callback) = 0;
    virtual void status(const std::string& ticket, done<std::optional<entry_status>> callback) = 0;
    virtual void heartbeat(const std::string& ticket, done<std::optional<entry_status>> callback) = 0;
    // The entry's status after leaving (its reason may be an earlier end); nullopt when unknown.
    virtual void leave(const std::string& ticket, done<std::optional<entry_status>> callback) = 0;
    virtual void force_end_all(done<std::size_t> callback) = 0;
    virtual void reserve_token(const std::string& ticket, int max_per_session, done<token_reservation> callback) = 0;
    // Remembers an upstream call of an active session, so that it is hung up when the session ends.
    virtual void record_call(std::uint64_t entry_id, const std::string& call_id, done<call_recording> callback) = 0;
    virtual void stats(done<store_stats> callback) = 0;
    // The statuses of these entries (an ended one with its reason; a forgotten one is left out).
    virtual void statuses(std::vector<std::uint64_t> entry_ids, done<std::vector<entry_status>> callback) = 0;

    // A live channel opened for `ticket`, or closed / showed life for its entry.
    virtual void channel_opened(const std::string& ticket, done<channel_opening> callback) = 0;
    virtual void channel_closed(std::uint64_t entry_id) = 0;
    virtual void channel_heartbeat(std::uint64_t entry_id) = 0;

    // The operator's controls (see session_broker): each answers whether it did anything.  The
    // pause and the limits persist across restarts (DATA_DIR, or the shared store).
    virtual void admin_view(done<store_admin_view> callback) = 0;
    // `why`: forced (the operator), idle or call_ended (the cost guard).
    virtual void end_session(std::uint64_t entry_id, end_reason why, done<bool> callback) = 0;
    virtual void remove_queued(std::uint64_t entry_id, done<bool> callback) = 0;
    virtual void set_paused(bool paused, done<bool> callback) = 0;
    virtual void change_limits(limits_change change, done<session_limits> callback) = 0;

    // The spend budget's rule (session_broker::admission_gate), asked before every admission.
    // recheck_admissions(): the gate may have opened (a new day, a raised budget, the end of a
    // quota pause); admit whoever can be now.
    virtual void set_admission_gate(session_broker::admission_gate gate) = 0;
    virtual void recheck_admissions() = 0;
    // The store that keeps the spend budget itself, for every instance together (the Redis
    // store), or nullptr (the memory store: the cost guard keeps it in DATA_DIR).
    virtual shared_budget* budget_keeper() { return nullptr; }

    // A hang-up on_hang_ups() asked for went out (or the call was already gone).
    virtual void hang_up_done(const std::string& call_id) = 0;

    // New rules for new admissions (SIGHUP); current sessions keep their deadlines.
    virtual void reload(const session_limits& limits) = 0;
    virtual const session_limits& limits() const = 0;

    // Every queued visitor's status, head first, from what this instance knows right now (for
    // broadcasts); `f` must not call the store.
    virtual void for_each_queued_status(const std::function<void(const entry_status&)>& f) const = 0;
    virtual std::size_t active_count() const = 0;
    virtual std::size_t queue_length() const = 0;
    // Every entry this instance keeps in memory (the memory store: live ones and remembered ends;
    // the Redis store: its mirror of holders, queue, leases and local channels): the gauge a soak
    // watches for growth.
    virtual std::size_t entry_count() const = 0;
    // Until when nothing that stats shows can change but by an event (nullopt: only for an instant).
    virtual std::optional<steady_time> stats_fresh_until() const = 0;
    // Whether the store can be reached now (the memory store always).
    virtual bool available() const = 0;
    // Whether the operator's pause holds admissions, as this instance knows now (the shared
    // store: its mirror of the operator's rules).
    virtual bool paused_by_operator() const = 0;

    // Stops for good.  `end_sessions`: end everything with reason "shutdown" (the memory store:
    // nobody could hang the calls up later); otherwise leave every session to the other instances.
    virtual void shutdown(bool end_sessions) = 0;
};

}  // namespace voice_broker
