// redis_store_impl: the Redis session store's one class, declared here and defined by concept
// across the redis_store_*.cpp files: redis_store.cpp (start, stop, the handle the service owns),
// redis_store_operations.cpp (the visitors' operations: each one script call and its answer read
// into the store's types), redis_store_script_calls.cpp (running the script, durable writes and
// WAIT), redis_store_mirror.cpp (the event batches and the local mirror of the queue and the
// holders), redis_store_timekeeping.cpp (Redis's clock, deadlines, touches, and leases ended from
// here while Redis is away), redis_store_budget.cpp (the spend budget every instance shares).
// What Redis says is read through redis_store_reader.  Everything
// runs on the service's strand; callbacks hold the store weakly.  Private to src/.
#pragma once

#include "redis_store.hpp"
#include "redis_store_reader.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/redis_connection.hpp"
#include "voice_broker/redis_master_locator.hpp"
#include "voice_broker/redis_replica_census.hpp"
#include "voice_broker/redis_script.hpp"
#include "voice_broker/redis_subscriber.hpp"
#include "voice_broker/slot_schedule.hpp"
#include "voice_broker/waiting_queue.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace voice_broker::redis_store_detail {

namespace net = boost::asio;
using json = nlohmann::json;

inline constexpr std::size_t max_calls = 8;
inline constexpr std::chrono::milliseconds ended_retention{10 * 60 * 1000};
inline constexpr std::size_t max_ended = 10000;

inline std::int64_t ms(std::chrono::nanoseconds d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

end_reason reason_from(const std::string& r);

// A mirrored holder: when it started and when it expires, in Redis milliseconds.
struct holder {
    std::int64_t started = 0;
    std::int64_t expires = 0;
};

// A lease this instance knows of, for ending it on time while Redis is away (or after Redis lost
// it: an orphan, which nobody but the instances that knew it can end any more).
struct known_lease {
    std::int64_t expires = 0;  // Redis milliseconds
    std::vector<std::string> calls;
    bool orphan = false;
};

class redis_store_impl final : public session_store,
                               public shared_budget,
                               public std::enable_shared_from_this<redis_store_impl> {
public:
    redis_store_impl(const net::any_io_executor& strand, const session_limits& limits, std::function<steady_time()> clock,
                     redis_store_options options, metrics& counters)
        : strand_(strand),
          clock_(std::move(clock)),
          config_limits_(limits),
          limits_(limits),
          options_(std::move(options)),
          metrics_(counters),
          prefix_("{" + options_.settings.key_prefix + "}:"),
          instance_(options_.settings.instance_id),
          script_(redis_store_script()),
          deadline_timer_(strand),
          tick_timer_(strand),
          lease_timer_(strand),
          gap_timer_(strand),
          wait_replicas_(options_.settings.wait_replicas.value_or(options_.settings.sentinels.empty() ? 0 : 1)) {}

    void start();  // lifecycle: redis_store.cpp
    ~redis_store_impl() override { close(); }
    void close();
    void set_listener(store_listener* listener) override { listener_ = listener; }

    // ---- operations (redis_store_operations.cpp) ------------------------------------------------

    // A join carries the Redis time after which it must not run any more: the moment this
    // instance stops waiting for it (its command deadline).  One that sat in a paused Redis's
    // socket buffer would otherwise give a place, or a slot, to a visitor who was told 503.
    void join(join_request request, done<join_outcome> callback) override { join_once(std::move(request), std::move(callback), false); }
    void join_once(join_request request, done<join_outcome> callback, bool retried);
    void status(const std::string& ticket, done<std::optional<entry_status>> callback) override;
    void heartbeat(const std::string& ticket, done<std::optional<entry_status>> callback) override;
    void leave(const std::string& ticket, done<std::optional<entry_status>> callback) override;
    void force_end_all(done<std::size_t> callback) override;
    void reserve_token(const std::string& ticket, int max_per_session, done<token_reservation> callback) override;
    void record_call(std::uint64_t entry_id, const std::string& call_id, done<call_recording> callback) override;
    void stats(done<store_stats> callback) override;
    void statuses(std::vector<std::uint64_t> entry_ids, done<std::vector<entry_status>> callback) override;
    void channel_opened(const std::string& ticket, done<channel_opening> callback) override;
    void channel_closed(std::uint64_t entry_id) override;
    void channel_heartbeat(std::uint64_t entry_id) override;
    void hang_up_done(const std::string& call_id) override;

    // ---- the operator's controls (redis_store_admin.cpp) ----------------------------------------
    void admin_view(done<store_admin_view> callback) override;
    void end_session(std::uint64_t entry_id, end_reason why, done<bool> callback) override;
    void remove_queued(std::uint64_t entry_id, done<bool> callback) override;
    void set_paused(bool paused, done<bool> callback) override;
    void change_limits(limits_change change, done<session_limits> callback) override;
    void set_admission_gate(session_broker::admission_gate gate) override { gate_ = std::move(gate); }
    // The gate may have opened: an advance admits whoever can be admitted now.
    void recheck_admissions() override;
    shared_budget* budget_keeper() override { return this; }

    // ---- the shared spend budget (redis_store_budget.cpp) ----------------------------------------
    void link_budget(std::function<std::optional<budget_terms>()> terms, std::function<void(const shared_spend&)> on_spend) override;
    void add_spend(const spend_delta& delta) override;
    bool spend_pending() const override { return !pending_spend_.empty() || spend_in_flight_; }

    // New config: the operator's shared rules still override it.
    void reload(const session_limits& limits) override;
    const session_limits& limits() const override { return limits_; }

    // ---- what this instance knows now (the mirror) -------------------------------------------
    void for_each_queued_status(const std::function<void(const entry_status&)>& f) const override;
    std::size_t active_count() const override { return holders_.size(); }
    std::size_t queue_length() const override { return queue_.size(); }
    std::size_t entry_count() const override {
        return holders_.size() + queue_.size() + leases_.size() + local_channels_.size();
    }
    std::optional<steady_time> stats_fresh_until() const override { return std::nullopt; }
    bool available() const override { return conn_ && conn_->is_up() && replicated_; }
    bool paused_by_operator() const override { return shared_.paused; }
    void shutdown(bool) override;

private:
    struct local_channel {
        std::string ticket;
        int count = 0;
    };
    std::string sanitized_instance() const;

    // The operator's rules (from Redis) over this instance's config: limits_ is the result.
    void adopt_rules(const shared_rules& rules);
    store_admin_view read_admin_view(const script_answer& a) const;
    // Whether this instance's admission gate holds the admissions of a run of `op` now.
    bool admissions_held(const std::string& op) const;

    // ---- running the script (redis_store_script_calls.cpp) --------------------------------------

    using reply_fn = std::function<void(store_error, const script_answer&)>;
    // `wait`: the replicas this run waits for (0: not durable; the script publishes its batch).
    std::vector<std::string> argv(const std::string& op, std::vector<std::string> args, int wait) const;
    // The replicas a run of `op` waits for.  The operations that may admit, end or record a call
    // (the only ones that make batches) are durable: each is followed by WAIT, and its batch is
    // published by this instance once enough replicas hold it.  Decided once per run.
    int replicas_for(const std::string& op) const;
    // REDIS_WAIT_REPLICAS, but never more than the replicas the sentinels could promote: when a
    // failover has no replica to pick, there is nothing a write must reach first.
    int replicas_to_wait() const;
    // With Sentinel: asks the census how many replicas could be promoted (every tick).
    void count_replicas();
    // The operations whose script may admit (it ends a session, or lets the queue move): the
    // admission gate is asked before each of them.
    static bool may_admit(const std::string& op);
    // Runs one operation.  An unreachable Redis, an error, or an answer that did not come (its
    // outcome unknown: the scripts are idempotent by ticket and id, so the caller may ask again)
    // all mean store_error::unavailable.  So does a durable write that too few replicas hold.
    void run(const std::string& op, std::vector<std::string> args, reply_fn done);
    // Whether run(op) would send the script now (otherwise it answers unavailable at once).
    bool would_run(const std::string& op) const;
    // A join answered 503 after its script may have run left a place (perhaps a slot) under a
    // ticket nobody was told of: it is taken back (a leave) once the store takes writes again.
    void take_back_later(const std::string& fresh_ticket);
    void take_back_untold_joins();
    // The script's answer, checked (redis_store_reader), or nullopt (counted and logged) when the
    // call failed or the answer is malformed.
    std::optional<script_answer> parse_reply(const std::string& op, std::error_code ec, const redis_reply& reply);
    void malformed(const std::string& op, const malformed_reply& e);
    void on_reply(const std::string& op, bool durable, std::error_code ec, const redis_reply& reply, const reply_fn& done);
    void on_answer(const std::string& op, bool durable, script_answer a, const reply_fn& done);
    // Hands a checked answer to `done`; a field of it that `done` finds malformed makes it
    // store_error::unavailable.  (A reply_fn reads every field it needs before it answers.)
    void answer(const std::string& op, const script_answer& a, const reply_fn& done);
    // A durable write's answer.  Fewer replicas than asked hold it (or WAIT's answer was lost):
    // the write happened on this master but a failover could still undo it.  Nobody is told:
    // the caller gets 503, the batch stays unpublished (but kept), the connection is made again,
    // and once a write is seen to reach the replicas the batch is looked up and published if the
    // master (perhaps a new one) has it.  Hang-ups it handed over are done all the same: the
    // session's end was asked for or due.
    void on_replicated_reply(const std::string& op, int wait, std::error_code ec, const redis_reply& reply,
                             std::int64_t acked, const reply_fn& done);
    void lose_replication();
    void publish(const json& batch);
    // After a reconnect, or on every tick while durability is lost: a fresh write and a WAIT
    // behind it.  When the replicas acknowledge it they hold everything this master had before
    // it, so the uncertain batches this master still has are now safe to publish; those it
    // lacks (a failover lost them) never happened.
    void check_replication();
    void on_replication_back(const std::vector<event_batch>& found, std::size_t asked, int wait);
    void hand_over_hang_ups(std::vector<std::string> calls);

    // ---- the spend budget's part of every run (redis_store_budget.cpp) --------------------------
    // ARGV[15..19]: the budget's current terms ('' and zeros when none).
    std::vector<std::string> budget_argv() const;
    // The answer's shared spend ("sp"), told to the cost guard; a malformed one is ignored (the
    // next answer brings it again).  `crossed`: the lines an add_spend answer reports.
    void note_spend(const std::string& op, const script_answer& a);
    // Sends what is pending (one addition in flight at a time); on failure it is kept for later.
    void flush_spend();

    // ---- Redis time and statuses ----------------------------------------------------------------

    // Redis's clock in this process's steady time: offset = Redis ms - local steady ms.
    void note_redis_time(std::int64_t redis_now_ms);
    // Times are read within script_doc::time_bound_ms of Redis's clock, so this cannot overflow.
    steady_time to_steady(std::int64_t redis_ms) const { return steady_time{std::chrono::milliseconds{redis_ms - offset_ms_}}; }
    std::int64_t redis_now() const { return ms(clock_().time_since_epoch()) + offset_ms_; }
    slot_schedule schedule(std::size_t places, std::int64_t now_ms) const;
    void run_for_status(const std::string& op, const std::string& ticket, done<std::optional<entry_status>> callback);
    // A status document of the script (status_of in redis_store.lua).  Throws malformed_reply.
    entry_status status_from(const script_doc& s) const;

    // ---- the event stream and the mirror (redis_store_mirror.cpp) -------------------------------

    // A message on the events channel.  Anything that is not a batch is ignored; a batch that is
    // malformed is dropped, and the mirror is read again (it may have missed a real one).
    void on_message(const std::string& payload);
    // A batch, from the subscription or from a script's own answer (whichever comes first; the
    // other is then old news).  Batches may arrive out of order: from two connections, and, with
    // durable admissions, published by each instance after its own WAIT.  A gap is waited for a
    // moment; if it stays open, a batch was lost, and the mirror is read again.
    void on_batch(const event_batch& batch);
    // Applies the buffered batches that follow the mirror without a gap; waits for a gap.
    void drain_buffered();
    std::chrono::milliseconds gap_patience() const;
    // Cost safety does not wait for the order of batches: a lease and its calls are known from
    // the moment any batch names them (at worst one is ended here again, harmlessly).
    void learn_leases(const event_batch& batch);
    // Whether the batch's new entries join the queue's end, as entry ids only grow.
    bool appends_in_order(const event_batch& batch) const;
    // Applies the next batch to the mirror and tells the listener; false (nothing applied) for
    // one that cannot follow the mirror.
    bool apply(const event_batch& batch);
    broker_event admitted(const store_event& ev, std::int64_t t);
    broker_event ended(const store_event& ev);
    // What a snapshot answer says, checked.
    struct snapshot {
        std::uint64_t seq = 0;
        std::vector<std::uint64_t> queue;                              // sorted, each once
        std::vector<std::pair<std::uint64_t, std::int64_t>> active;    // id, expires
        std::vector<std::int64_t> starts;
        std::vector<std::vector<std::string>> calls;
        std::vector<std::uint64_t> gone;
        std::optional<shared_rules> rules;  // absent from an older script
    };
    static snapshot read_snapshot(const script_answer& a);
    // Reads the queue and the holders again (at start, after a reconnect, after a lost batch),
    // then re-pushes every local visitor's status.
    void resync();
    void adopt_snapshot(snapshot s, std::int64_t now_ms);

    // ---- time: deadlines, touches, and leases while Redis is away (redis_store_timekeeping.cpp) ---

    std::chrono::milliseconds channel_lease() const { return 3 * touch_period(); }
    std::chrono::milliseconds touch_period() const;
    void arm_deadline(std::int64_t next_ms);
    void advance();
    // This instance's live channels are signs of life; the touch also says the instance is alive.
    void touch();
    void arm_tick();
    void on_tick();
    // Cost safety: a lease this instance knows ends at its deadline here, and its calls are hung
    // up, when Redis cannot do it: while Redis is away (again, harmlessly, by whoever processes the
    // expiry once it is back), and for an orphan (Redis lost it) at any time.
    bool ends_locally(const known_lease& lease) const { return lease.orphan || !available(); }
    void end_due_leases_locally();
    // Wakes at the earliest deadline among the leases this instance would end itself.
    void arm_lease_timer();
    void on_link(redis_link_state state);

    net::any_io_executor strand_;
    std::function<steady_time()> clock_;
    session_limits config_limits_;  // this instance's config (SIGHUP)
    session_limits limits_;         // the config with the operator's shared rules over it
    shared_rules shared_;
    session_broker::admission_gate gate_;
    std::function<std::optional<budget_terms>()> budget_terms_;
    std::function<void(const shared_spend&)> on_spend_;
    std::map<std::uint64_t, spend_delta> pending_spend_;  // not yet added to Redis, by entry id
    spend_delta in_flight_spend_;
    bool spend_in_flight_ = false;
    redis_store_options options_;
    metrics& metrics_;
    std::string prefix_;
    std::string instance_;
    redis_script script_;
    std::shared_ptr<redis_connection> conn_;
    std::shared_ptr<redis_subscriber> sub_;
    std::shared_ptr<redis_master_locator> locator_;
    std::shared_ptr<redis_replica_census> census_;  // with Sentinel and durable writes
    net::steady_timer deadline_timer_;
    net::steady_timer tick_timer_;
    net::steady_timer lease_timer_;
    net::steady_timer gap_timer_;
    store_listener* listener_ = nullptr;
    int wait_replicas_ = 0;           // durable admissions: replicas each such write waits for
    std::optional<int> promotable_;   // replicas the sentinels could promote (census_); unknown: wait_replicas_
    bool counting_ = false;
    bool replicated_ = true;          // false from an unacknowledged durable write until a WAIT succeeds
    bool checking_replication_ = false;
    std::vector<event_batch> uncertain_;     // batches of writes whose replication is not known
    std::deque<std::string> untold_joins_;   // fresh tickets of joins answered 503 that may have run
    bool taking_back_ = false;
    std::optional<std::uint64_t> gap_since_;  // the mirror's seq when a gap began to be waited for

    std::int64_t offset_ms_ = 0;  // Redis ms - local steady ms
    bool clock_known_ = false;    // offset_ms_ comes from an answer
    // The mirror: queued ids and holders, as of batch last_seq_ (Redis time mirror_now_ms_).
    waiting_queue queue_;
    std::map<std::uint64_t, holder> holders_;
    std::unordered_map<std::uint64_t, known_lease> leases_;
    std::uint64_t last_seq_ = 0;
    std::int64_t mirror_now_ms_ = 0;
    bool synced_ = false, resyncing_ = false;
    std::vector<event_batch> buffered_;
    std::unordered_map<std::uint64_t, local_channel> local_channels_;  // by entry id

    std::optional<std::int64_t> armed_deadline_ms_;
    steady_time last_touch_{};
    bool was_up_ = false;
    bool closing_ = false;
};

}  // namespace voice_broker::redis_store_detail
