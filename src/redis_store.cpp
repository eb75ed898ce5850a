#include "redis_store.hpp"

#include "redis_store_lua.hpp"  // generated from redis_store.lua at configure time
#include "redis_store_reader.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/redis_connection.hpp"
#include "voice_broker/redis_error.hpp"
#include "voice_broker/redis_master_locator.hpp"
#include "voice_broker/redis_script.hpp"
#include "voice_broker/redis_subscriber.hpp"
#include "voice_broker/slot_schedule.hpp"
#include "voice_broker/waiting_queue.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <unordered_map>


namespace voice_broker {

namespace net = boost::asio;
using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string& redis_store_script() {
    static const std::string source(redis_store_lua);
    return source;
}

namespace {

constexpr std::size_t max_calls = 8;
constexpr std::chrono::milliseconds ended_retention{10 * 60 * 1000};
constexpr std::size_t max_ended = 10000;

std::int64_t ms(std::chrono::nanoseconds d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

end_reason reason_from(const std::string& r) {
    for (auto why : all_end_reasons) {
        if (to_string(why) == r) return why;
    }
    return end_reason::left;
}

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

class redis_store_impl final : public session_store, public std::enable_shared_from_this<redis_store_impl> {
public:
    redis_store_impl(const net::any_io_executor& strand, const session_limits& limits, std::function<steady_time()> clock,
                     redis_store_options options, metrics& counters)
        : strand_(strand),
          clock_(std::move(clock)),
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

    void start() {
        redis_client_options client;
        if (auto parsed = redis_url::parse(options_.settings.redis_url); std::holds_alternative<redis_url>(parsed)) {
            client.url = std::get<redis_url>(parsed);
        } else {
            throw std::runtime_error("REDIS_URL: " + std::get<std::string>(parsed));
        }
        if (!options_.settings.sentinels.empty()) {
            auto list = parse_sentinel_list(options_.settings.sentinels);
            if (auto* err = std::get_if<std::string>(&list)) throw std::runtime_error("REDIS_SENTINELS: " + *err);
            redis_sentinel_settings s;
            s.sentinels = std::get<std::vector<redis_endpoint>>(list);
            s.master_name = options_.settings.sentinel_master;
            s.password = options_.settings.sentinel_password;
            locator_ = redis_master_locator::create(strand_, s);
            locator_->start();
            client.sentinel = locator_;
        }
        client.client_name = "voice-broker:" + sanitized_instance();
        client.log_name = "store";
        conn_ = redis_connection::create(strand_, client);
        client.log_name = "events";
        sub_ = redis_subscriber::create(strand_, client);
        std::weak_ptr<redis_store_impl> weak = shared_from_this();
        sub_->on_message([weak](const redis_message& m) {
            if (auto self = weak.lock()) self->on_message(m.payload);
        });
        sub_->on_resync([weak] {
            if (auto self = weak.lock()) self->resync();
        });
        conn_->add_state_observer([weak](redis_link_state state) {
            if (auto self = weak.lock()) self->on_link(state);
        });
        sub_->subscribe(prefix_ + "events");
        conn_->start();
        sub_->start();
        arm_tick();
    }

    ~redis_store_impl() override { close(); }

    void close() {
        closing_ = true;
        deadline_timer_.cancel();
        tick_timer_.cancel();
        lease_timer_.cancel();
        gap_timer_.cancel();
        if (sub_) sub_->close();
        if (conn_) conn_->close();
        if (locator_) locator_->close();
    }

    void set_listener(store_listener* listener) override { listener_ = listener; }

    // ---- operations ---------------------------------------------------------------------------

    // A join carries the Redis time after which it must not run any more: the moment this
    // instance stops waiting for it (its command deadline).  One that sat in a paused Redis's
    // socket buffer would otherwise give a place, or a slot, to a visitor who was told 503.
    void join(join_request request, done<join_outcome> callback) override { join_once(std::move(request), std::move(callback), false); }

    void join_once(join_request request, done<join_outcome> callback, bool retried) {
        // Before the first answer this instance does not know Redis's clock: no deadline then.
        const auto answer_by = clock_known_ ? redis_now() + ms(options_.command_timeout) : 0;
        std::vector<std::string> args{request.fresh_ticket, request.existing_ticket.value_or(""), request.client_address,
                                      std::to_string(answer_by)};
        run("join", std::move(args),
            [this, request = std::move(request), callback = std::move(callback), retried](store_error error, const script_answer& a) mutable {
                join_outcome out{join_outcome::kind::queue_full, {}};
                const auto what = error == store_error::none ? a.reader().text_or("what", "") : std::string();
                if (what == "late") {
                    // It answered in time, so this instance's idea of Redis's clock was behind (a
                    // new master with another clock): once more, with the clock just learned.
                    if (!retried) return join_once(std::move(request), std::move(callback), true);
                    error = store_error::unavailable;
                }
                if (error == store_error::none && what != "full") {
                    out.what = what == "existing" ? join_outcome::kind::existing : join_outcome::kind::joined;
                    out.status = status_from(a.reader().object("status"));
                }
                callback(error, std::move(out));
            });
    }

    void status(const std::string& ticket, done<std::optional<entry_status>> callback) override {
        run_for_status("status", ticket, std::move(callback));
    }

    void heartbeat(const std::string& ticket, done<std::optional<entry_status>> callback) override {
        run_for_status("heartbeat", ticket, std::move(callback));
    }

    void leave(const std::string& ticket, done<std::optional<entry_status>> callback) override {
        run_for_status("leave", ticket, std::move(callback));
    }

    void force_end_all(done<std::size_t> callback) override {
        run("force_end_all", {}, [callback = std::move(callback)](store_error error, const script_answer& a) {
            callback(error, error == store_error::none ? a.reader().count_or("ended", 0) : 0);
        });
    }

    void reserve_token(const std::string& ticket, int max_per_session, done<token_reservation> callback) override {
        run("reserve_token", {ticket, std::to_string(max_per_session)},
            [this, callback = std::move(callback)](store_error error, const script_answer& a) {
                token_reservation out;
                if (error == store_error::none) {
                    const auto what = a.reader().text_or("what", "unknown");
                    if (what == "reserved") {
                        out.what = token_reservation::kind::reserved;
                        out.status = status_from(a.reader().object("status"));
                    } else if (what == "not_active") {
                        out.what = token_reservation::kind::not_active;
                    } else if (what == "limit") {
                        out.what = token_reservation::kind::limit_reached;
                    }
                }
                callback(error, std::move(out));
            });
    }

    void record_call(std::uint64_t entry_id, const std::string& call_id, done<call_recording> callback) override {
        run("record_call", {std::to_string(entry_id), call_id, std::to_string(max_calls)},
            [callback = std::move(callback)](store_error error, const script_answer& a) {
                const auto what = error == store_error::none ? a.reader().text_or("what", "") : std::string();
                const auto out = what == "recorded" ? call_recording::recorded
                                 : what == "limit"  ? call_recording::limit_reached
                                                    : call_recording::not_active;
                callback(error, out);
            });
    }

    void stats(done<store_stats> callback) override {
        run("stats", {}, [this, callback = std::move(callback)](store_error error, const script_answer& a) {
            store_stats out;
            out.limits = limits_;
            if (error == store_error::none) {
                const auto r = a.reader();
                const auto active = r.id_times("active");
                const auto starts = r.times("starts");
                for (std::size_t i = 0; i < active.size(); ++i) {
                    const auto started = i < starts.size() ? starts[i] : a.now;
                    out.sessions.push_back({to_steady(started), to_steady(active[i].second)});
                }
                out.active = out.sessions.size();
                out.queued = r.count_or("queued", 0);
                const auto day = r.counts("today");
                if (day.size() == 3) {
                    out.today = shared_usage{day[0], day[1], std::chrono::milliseconds{static_cast<std::int64_t>(day[2])}};
                }
                out.instances = r.texts("instances");
                metrics_.instances_alive.store(static_cast<std::int64_t>(out.instances.size()), std::memory_order_relaxed);
            }
            callback(error, std::move(out));
        });
    }

    void statuses(std::vector<std::uint64_t> entry_ids, done<std::vector<entry_status>> callback) override {
        std::vector<std::string> args;
        args.reserve(entry_ids.size());
        for (auto id : entry_ids) args.push_back(std::to_string(id));
        run("statuses", std::move(args), [this, callback = std::move(callback)](store_error error, const script_answer& a) {
            std::vector<entry_status> out;
            if (error == store_error::none) {
                for (const auto& s : a.reader().objects("statuses")) out.push_back(status_from(s));
            }
            callback(error, std::move(out));
        });
    }

    void channel_opened(const std::string& ticket, done<channel_opening> callback) override {
        run("channel_open", {ticket}, [this, ticket, callback = std::move(callback)](store_error error, const script_answer& a) {
            channel_opening out;
            if (error == store_error::none) {
                const auto what = a.reader().text_or("what", "unknown");
                if (what != "unknown") out.status = status_from(a.reader().object("status"));
                if (what == "opened") {
                    out.what = channel_opening::kind::opened;
                    auto& local = local_channels_[out.status.entry_id];
                    local.ticket = ticket;
                    ++local.count;
                } else if (what == "ended") {
                    out.what = channel_opening::kind::ended;
                }
            }
            callback(error, std::move(out));
        });
    }

    void channel_closed(std::uint64_t entry_id) override {
        auto it = local_channels_.find(entry_id);
        if (it == local_channels_.end()) return;
        if (--it->second.count == 0) local_channels_.erase(it);
        run("channel_close", {std::to_string(entry_id)}, [](store_error, const script_answer&) {});
    }

    void channel_heartbeat(std::uint64_t entry_id) override {
        run("channel_heartbeat", {std::to_string(entry_id)}, [](store_error, const script_answer&) {});
    }

    void hang_up_done(const std::string& call_id) override {
        for (auto& [id, lease] : leases_) std::erase(lease.calls, call_id);
        run("hangup_done", {call_id}, [](store_error, const script_answer&) {});
    }

    // The operator's controls in redis mode.
    void admin_view(done<store_admin_view> callback) override { callback(store_error::unavailable, {}); }
    void end_session(std::uint64_t, end_reason, done<bool> callback) override { callback(store_error::unavailable, false); }
    void set_admission_gate(session_broker::admission_gate) override {}
    void recheck_admissions() override {}
    void remove_queued(std::uint64_t, done<bool> callback) override { callback(store_error::unavailable, false); }
    void set_paused(bool, done<bool> callback) override { callback(store_error::unavailable, false); }
    void change_limits(limits_change, done<session_limits> callback) override { callback(store_error::unavailable, limits_); }

    void reload(const session_limits& limits) override { limits_ = limits; }
    const session_limits& limits() const override { return limits_; }

    void for_each_queued_status(const std::function<void(const entry_status&)>& f) const override {
        const auto now_ms = mirror_now_ms_;
        const auto etas = schedule(queue_.size(), now_ms);
        entry_status s;
        s.state = entry_state::queued;
        s.queue_length = queue_.size();
        std::size_t position = 0;
        for (auto id : queue_) {
            const auto local = local_channels_.find(id);
            s.ticket = local == local_channels_.end() ? std::string() : local->second.ticket;
            s.entry_id = id;
            s.position = ++position;
            s.eta_seconds = etas.eta_seconds(position);
            f(s);
        }
    }

    std::size_t active_count() const override { return holders_.size(); }
    std::size_t queue_length() const override { return queue_.size(); }
    std::optional<steady_time> stats_fresh_until() const override { return std::nullopt; }
    bool available() const override { return conn_ && conn_->is_up() && replicated_; }

    void shutdown(bool) override {
        // The sessions live on in Redis; the other instances take over this one's visitors.
        closing_ = true;
        deadline_timer_.cancel();
        tick_timer_.cancel();
        lease_timer_.cancel();
        gap_timer_.cancel();
        if (conn_ && conn_->is_up()) conn_->command({"ZREM", prefix_ + "i", instance_}, 500ms, [](std::error_code, redis_reply) {});
    }

private:
    struct local_channel {
        std::string ticket;
        int count = 0;
    };

    std::string sanitized_instance() const {
        std::string out;
        for (char c : instance_) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
        return out;
    }

    // ---- running the script -----------------------------------------------------------------

    using reply_fn = std::function<void(store_error, const script_answer&)>;

    std::vector<std::string> argv(const std::string& op, std::vector<std::string> args) const {
        std::string warnings;
        for (auto w : limits_.warnings) {
            if (!warnings.empty()) warnings += ',';
            warnings += std::to_string(w.count());
        }
        std::vector<std::string> out{op,
                                     std::to_string(limits_.max_concurrent_users),
                                     std::to_string(limits_.max_queue_length),
                                     std::to_string(ms(limits_.session_duration)),
                                     std::to_string(ms(limits_.heartbeat_timeout)),
                                     std::to_string(ms(limits_.admission_grace)),
                                     warnings,
                                     std::to_string(ms(channel_lease())),
                                     std::to_string(ended_retention.count()),
                                     std::to_string(max_ended),
                                     instance_,
                                     std::to_string(durable(op) || options_.keep_batches ? options_.batch_retention.count() : 0),
                                     durable(op) ? "1" : "0"};
        for (auto& a : args) out.push_back(std::move(a));
        return out;
    }

    // The operations that may admit, end or record a call (the only ones that make batches).
    // With durable admissions, each is followed by WAIT, and its batch is published by this
    // instance once enough replicas hold it.
    bool durable(const std::string& op) const {
        return wait_replicas_ > 0 &&
               (op == "join" || op == "leave" || op == "force_end_all" || op == "advance" || op == "record_call");
    }

    // Runs one operation.  An unreachable Redis, an error, or an answer that did not come (its
    // outcome unknown: the scripts are idempotent by ticket and id, so the caller may ask again)
    // all mean store_error::unavailable.  So does a durable write that too few replicas hold.
    void run(const std::string& op, std::vector<std::string> args, reply_fn done) {
        if (!conn_ || !conn_->is_up() || closing_) return done(store_error::unavailable, script_answer{});
        std::weak_ptr<redis_store_impl> weak = shared_from_this();
        if (durable(op)) {
            // Until a write has been seen to reach the replicas again, none is tried: each would
            // be a change that a failover may undo.
            if (!replicated_) return done(store_error::unavailable, script_answer{});
            script_.run_replicated(*conn_, {prefix_}, argv(op, std::move(args)), wait_replicas_, options_.settings.wait_timeout,
                                   options_.command_timeout + options_.settings.wait_timeout,
                                   [weak, op, done = std::move(done)](std::error_code ec, redis_reply reply, std::int64_t acked) {
                                       auto self = weak.lock();
                                       if (!self) return;
                                       self->on_replicated_reply(op, ec, reply, acked, done);
                                   });
            return;
        }
        script_.run(*conn_, {prefix_}, argv(op, std::move(args)), options_.command_timeout,
                    [weak, op, done = std::move(done)](std::error_code ec, redis_reply reply) {
                        auto self = weak.lock();
                        if (!self) return;  // the store is gone: the callback is dropped unrun
                        self->on_reply(op, ec, reply, done);
                    });
    }

    // The script's answer, checked (redis_store_reader), or nullopt (counted and logged) when the
    // call failed or the answer is malformed.
    std::optional<script_answer> parse_reply(const std::string& op, std::error_code ec, const redis_reply& reply) {
        if (ec || reply.is_error() || reply.type != redis_reply_type::string) {
            metrics_.store_errors.fetch_add(1, std::memory_order_relaxed);
            spdlog::warn("redis store: {} failed: {}", op, ec ? ec.message() : reply.describe());
            return std::nullopt;
        }
        try {
            return read_answer(reply.text);
        } catch (const malformed_reply& e) {
            malformed(op, e);
            return std::nullopt;
        }
    }

    void malformed(const std::string& op, const malformed_reply& e) {
        metrics_.store_errors.fetch_add(1, std::memory_order_relaxed);
        spdlog::error("redis store: {} answered something that is not the script's answer ({})", op, e.what());
    }

    void on_reply(const std::string& op, std::error_code ec, const redis_reply& reply, const reply_fn& done) {
        auto a = parse_reply(op, ec, reply);
        if (!a) return done(store_error::unavailable, script_answer{});
        on_answer(op, std::move(*a), done);
    }

    void on_answer(const std::string& op, script_answer a, const reply_fn& done) {
        note_redis_time(a.now);
        arm_deadline(a.next_deadline);
        hand_over_hang_ups(std::move(a.hang_ups));
        if (a.batch) {
            // Deferred: the replicas hold it now, so everyone may hear of it.  Either way this
            // instance's listener hears of the change before the caller's answer goes out.
            if (durable(op)) publish(a.batch->raw);
            on_batch(*a.batch);
        }
        answer(op, a, done);
        if (op == "advance" && a.more) advance();
    }

    // Hands a checked answer to `done`; a field of it that `done` finds malformed makes it
    // store_error::unavailable.  (A reply_fn reads every field it needs before it answers.)
    void answer(const std::string& op, const script_answer& a, const reply_fn& done) {
        try {
            done(store_error::none, a);
        } catch (const malformed_reply& e) {
            malformed(op, e);
            done(store_error::unavailable, script_answer{});
        }
    }

    // A durable write's answer.  Fewer replicas than asked hold it (or WAIT's answer was lost):
    // the write happened on this master but a failover could still undo it.  Nobody is told:
    // the caller gets 503, the batch stays unpublished (but kept), the connection is made again,
    // and once a write is seen to reach the replicas the batch is looked up and published if the
    // master (perhaps a new one) has it.  Hang-ups it handed over are done all the same: the
    // session's end was asked for or due.
    void on_replicated_reply(const std::string& op, std::error_code ec, const redis_reply& reply, std::int64_t acked,
                             const reply_fn& done) {
        if (ec || reply.is_error() || acked >= wait_replicas_) return on_reply(op, ec, reply, done);
        auto a = parse_reply(op, ec, reply);
        if (!a) return done(store_error::unavailable, script_answer{});
        metrics_.store_errors.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("redis store: {} reached {} of {} replica(s) within {} ms; answering 503 until a write reaches them again",
                     op, std::max<std::int64_t>(acked, 0), wait_replicas_, options_.settings.wait_timeout.count());
        if (!a->batch) {
            // It admitted, ended and recorded nothing (a join that found its entry, a late one, an
            // advance with nothing due): nothing that anyone could be told of is at risk.
            lose_replication();
            return on_answer(op, std::move(*a), done);
        }
        note_redis_time(a->now);
        hand_over_hang_ups(std::move(a->hang_ups));
        uncertain_.push_back(std::move(*a->batch));
        lose_replication();
        done(store_error::unavailable, script_answer{});
    }

    void lose_replication() {
        if (!replicated_) return;
        replicated_ = false;
        metrics_.store_up.store(0, std::memory_order_relaxed);
        conn_->reconnect();
        end_due_leases_locally();  // Redis cannot end them now; arms the timer for the others
    }

    void publish(const json& batch) {
        conn_->command({"PUBLISH", prefix_ + "events", batch.dump()}, options_.command_timeout,
                       [](std::error_code, redis_reply) {});  // lost: the others see a gap, and resync
    }

    // After a reconnect, or on every tick while durability is lost: a fresh write and a WAIT
    // behind it.  When the replicas acknowledge it they hold everything this master had before
    // it, so the uncertain batches this master still has are now safe to publish; those it
    // lacks (a failover lost them) never happened.
    void check_replication() {
        if (checking_replication_ || closing_ || !conn_ || !conn_->is_up()) return;
        checking_replication_ = true;
        auto found = std::make_shared<std::vector<event_batch>>();
        for (const auto& batch : uncertain_) {
            conn_->command({"GET", prefix_ + "b:" + std::to_string(batch.seq)}, options_.command_timeout,
                           [found, batch](std::error_code ec, redis_reply reply) {
                               if (ec || reply.type != redis_reply_type::string) return;
                               if (json::parse(reply.text, nullptr, false) == batch.raw) found->push_back(batch);
                           });
        }
        conn_->command({"SET", prefix_ + "probe:" + instance_, "1", "PX", "60000"}, options_.command_timeout,
                       [](std::error_code, redis_reply) {});
        std::weak_ptr<redis_store_impl> weak = shared_from_this();
        const auto asked = uncertain_.size();
        conn_->command({"WAIT", std::to_string(wait_replicas_), std::to_string(options_.settings.wait_timeout.count())},
                       options_.command_timeout + options_.settings.wait_timeout,
                       [weak, found, asked](std::error_code ec, redis_reply reply) {
                           auto self = weak.lock();
                           if (!self) return;
                           self->checking_replication_ = false;
                           if (ec || reply.type != redis_reply_type::integer || reply.integer < self->wait_replicas_) return;
                           self->on_replication_back(*found, asked);
                       });
    }

    void on_replication_back(const std::vector<event_batch>& found, std::size_t asked) {
        spdlog::info("redis store: writes reach {} replica(s) again; {} of {} uncertain batch(es) survived", wait_replicas_,
                     found.size(), asked);
        uncertain_.erase(uncertain_.begin(), uncertain_.begin() + static_cast<std::ptrdiff_t>(std::min(asked, uncertain_.size())));
        replicated_ = true;
        metrics_.store_up.store(available() ? 1 : 0, std::memory_order_relaxed);
        for (const auto& batch : found) {
            publish(batch.raw);
            on_batch(batch);
        }
        arm_lease_timer();
        advance();
    }

    void run_for_status(const std::string& op, const std::string& ticket, done<std::optional<entry_status>> callback) {
        run(op, {ticket}, [this, callback = std::move(callback)](store_error error, const script_answer& a) {
            std::optional<entry_status> out;
            if (error == store_error::none && a.reader().has("status")) out = status_from(a.reader().object("status"));
            callback(error, std::move(out));
        });
    }

    void hand_over_hang_ups(std::vector<std::string> calls) {
        if (!calls.empty() && listener_) listener_->on_hang_ups(std::move(calls));
    }

    // ---- Redis time and statuses --------------------------------------------------------------

    // Redis's clock in this process's steady time: offset = Redis ms - local steady ms.
    void note_redis_time(std::int64_t redis_now_ms) {
        offset_ms_ = redis_now_ms - ms(clock_().time_since_epoch());
        clock_known_ = true;
    }
    // Times are read within script_doc::time_bound_ms of Redis's clock, so this cannot overflow.
    steady_time to_steady(std::int64_t redis_ms) const { return steady_time{std::chrono::milliseconds{redis_ms - offset_ms_}}; }
    std::int64_t redis_now() const { return ms(clock_().time_since_epoch()) + offset_ms_; }

    slot_schedule schedule(std::size_t places, std::int64_t now_ms) const {
        std::vector<slot_schedule::duration> frees;
        frees.reserve(holders_.size());
        for (const auto& [id, h] : holders_) frees.emplace_back(std::chrono::milliseconds{std::max<std::int64_t>(0, h.expires - now_ms)});
        return slot_schedule::for_holders(std::move(frees), limits_.max_concurrent_users,
                                          std::chrono::duration_cast<slot_schedule::duration>(limits_.session_duration), places);
    }

    // A status document of the script (status_of in redis_store.lua).  Throws malformed_reply.
    entry_status status_from(const script_doc& s) const {
        const auto now_ms = s.now();
        entry_status out;
        out.entry_id = s.has("id") ? s.id("id") : 0;
        out.ticket = s.text_or("t", "");
        out.queue_length = s.count_or("ql", 0);
        const auto st = s.text_or("st", "e");
        if (st == "q") {
            out.state = entry_state::queued;
            out.position = s.count_or("pos", 0);
            std::vector<slot_schedule::duration> frees;
            for (const auto& [id, expires] : s.id_times("exp")) {
                frees.emplace_back(std::chrono::milliseconds{std::max<std::int64_t>(0, expires - now_ms)});
            }
            const auto etas = slot_schedule::for_holders(std::move(frees), limits_.max_concurrent_users,
                                                         std::chrono::duration_cast<slot_schedule::duration>(limits_.session_duration),
                                                         out.position);
            out.eta_seconds = etas.eta_seconds(out.position);
        } else if (st == "a") {
            out.state = entry_state::active;
            const auto expires = s.time_or("x", now_ms);
            out.started_at = to_steady(s.time_or("s", now_ms));
            out.expires_at = to_steady(expires);
            out.remaining_seconds = std::max<std::int64_t>(0, (expires - now_ms + 999) / 1000);
            out.confirmed = s.small_or("c", 0) == 1;
        } else {
            out.state = entry_state::ended;
            out.reason = reason_from(s.text_or("r", "left"));
        }
        return out;
    }

    // ---- the event stream and the mirror ----------------------------------------------------

    // A message on the events channel.  Anything that is not a batch is ignored; a batch that is
    // malformed is dropped, and the mirror is read again (it may have missed a real one).
    void on_message(const std::string& payload) {
        const auto doc = json::parse(payload, nullptr, false);
        if (doc.is_discarded() || !doc.is_object() || !doc.contains("s")) return;
        try {
            on_batch(read_batch(doc, clock_known_ ? std::optional<std::int64_t>(redis_now()) : std::nullopt));
        } catch (const malformed_reply& e) {
            metrics_.store_errors.fetch_add(1, std::memory_order_relaxed);
            spdlog::error("redis store: a malformed event batch ({}); reading the state again", e.what());
            resync();
        }
    }

    // A batch, from the subscription or from a script's own answer (whichever comes first; the
    // other is then old news).  Batches may arrive out of order: from two connections, and, with
    // durable admissions, published by each instance after its own WAIT.  A gap is waited for a
    // moment; if it stays open, a batch was lost, and the mirror is read again.
    void on_batch(const event_batch& batch) {
        if (synced_ && batch.seq <= last_seq_) return;  // already in the mirror
        learn_leases(batch);
        buffered_.push_back(batch);
        if (synced_) drain_buffered();
    }

    // Applies the buffered batches that follow the mirror without a gap; waits for a gap.
    void drain_buffered() {
        std::sort(buffered_.begin(), buffered_.end(), [](const event_batch& a, const event_batch& b) { return a.seq < b.seq; });
        std::size_t i = 0;
        for (; i < buffered_.size(); ++i) {
            const auto seq = buffered_[i].seq;
            if (seq <= last_seq_) continue;
            if (seq != last_seq_ + 1) break;
            if (!apply(buffered_[i])) {
                buffered_.clear();
                return resync();
            }
        }
        buffered_.erase(buffered_.begin(), buffered_.begin() + static_cast<std::ptrdiff_t>(i));
        if (buffered_.empty()) {
            gap_timer_.cancel();
            gap_since_.reset();
            return;
        }
        if (gap_since_) return;
        gap_since_ = last_seq_;
        gap_timer_.expires_after(gap_patience());
        std::weak_ptr<redis_store_impl> weak = shared_from_this();
        gap_timer_.async_wait([weak](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self) return;
            const bool stuck = self->gap_since_ && *self->gap_since_ == self->last_seq_;
            self->gap_since_.reset();
            if (stuck && !self->buffered_.empty()) {
                spdlog::info("redis store: batch {} never came; reading the state again", self->last_seq_ + 1);
                return self->resync();
            }
            if (!self->buffered_.empty()) self->drain_buffered();  // progress: wait for the next gap
        });
    }

    std::chrono::milliseconds gap_patience() const {
        return std::chrono::milliseconds{500} + (wait_replicas_ > 0 ? 2 * options_.settings.wait_timeout : std::chrono::milliseconds{0});
    }

    // Cost safety does not wait for the order of batches: a lease and its calls are known from
    // the moment any batch names them (at worst one is ended here again, harmlessly).
    void learn_leases(const event_batch& batch) {
        for (const auto& ev : batch.events) {
            if (ev.what == store_event::kind::admitted) {
                leases_[ev.id].expires = ev.expires;
            } else if (ev.what == store_event::kind::call) {
                auto& lease = leases_[ev.id];
                if (std::find(lease.calls.begin(), lease.calls.end(), ev.call) == lease.calls.end()) lease.calls.push_back(ev.call);
                if (lease.expires == 0) lease.expires = ev.expires;
            }
        }
    }

    // Whether the batch's new entries join the queue's end, as entry ids only grow.
    bool appends_in_order(const event_batch& batch) const {
        auto last = queue_.empty() ? std::uint64_t{0} : *(queue_.end() - 1);
        for (const auto& ev : batch.events) {
            if (ev.what != store_event::kind::queued) continue;
            if (ev.id <= last) return false;
            last = ev.id;
        }
        return true;
    }

    // Applies the next batch to the mirror and tells the listener; false (nothing applied) for
    // one that cannot follow the mirror.
    bool apply(const event_batch& batch) {
        if (!appends_in_order(batch)) {
            metrics_.store_errors.fetch_add(1, std::memory_order_relaxed);
            spdlog::error("redis store: batch {} queues an entry out of join order; reading the state again", batch.seq);
            return false;
        }
        last_seq_ = batch.seq;
        const auto t = batch.t;
        mirror_now_ms_ = std::max(mirror_now_ms_, t);
        arm_deadline(batch.next_deadline);
        std::vector<broker_event> events;
        for (const auto& ev : batch.events) {
            if (ev.what == store_event::kind::queued) {
                queue_.push_back(ev.id);
            } else if (ev.what == store_event::kind::admitted) {
                events.push_back(admitted(ev, t));
            } else if (ev.what == store_event::kind::warning) {
                broker_event w{broker_event::kind::warning, ev.id};
                w.seconds_left = std::chrono::seconds{ev.seconds_left};
                events.push_back(std::move(w));
            } else if (ev.what == store_event::kind::ended) {
                events.push_back(ended(ev));
            }
        }
        if (batch.queue_changed && !queue_.empty()) events.push_back({broker_event::kind::queue_changed, 0});
        if (listener_ && !events.empty()) listener_->on_events(events, to_steady(t), batch.by == instance_);
        return true;
    }

    broker_event admitted(const store_event& ev, std::int64_t t) {
        queue_.erase(ev.id);
        holder h{ev.started, ev.expires};
        holders_[ev.id] = h;
        leases_[ev.id].expires = h.expires;
        broker_event out{broker_event::kind::admitted, ev.id};
        out.waited_since = to_steady(ev.joined);
        auto& s = out.status;
        s.entry_id = ev.id;
        if (const auto local = local_channels_.find(ev.id); local != local_channels_.end()) s.ticket = local->second.ticket;
        s.state = entry_state::active;
        s.queue_length = queue_.size();
        s.started_at = to_steady(h.started);
        s.expires_at = to_steady(h.expires);
        s.remaining_seconds = std::max<std::int64_t>(0, (h.expires - t + 999) / 1000);
        s.confirmed = ev.confirmed;
        return out;
    }

    broker_event ended(const store_event& ev) {
        queue_.erase(ev.id);
        holders_.erase(ev.id);
        leases_.erase(ev.id);
        broker_event out{broker_event::kind::ended, ev.id};
        out.reason = reason_from(ev.reason);
        out.was_active = ev.was_active;
        out.started_at = to_steady(ev.started);
        return out;
    }

    // What a snapshot answer says, checked.
    struct snapshot {
        std::uint64_t seq = 0;
        std::vector<std::uint64_t> queue;                              // sorted, each once
        std::vector<std::pair<std::uint64_t, std::int64_t>> active;    // id, expires
        std::vector<std::int64_t> starts;
        std::vector<std::vector<std::string>> calls;
        std::vector<std::uint64_t> gone;
    };

    static snapshot read_snapshot(const script_answer& a) {
        const auto r = a.reader();
        snapshot s;
        s.seq = r.number_or("seq", 0);
        s.queue = r.id_texts("queue");
        std::sort(s.queue.begin(), s.queue.end());
        s.queue.erase(std::unique(s.queue.begin(), s.queue.end()), s.queue.end());
        s.active = r.id_times("active");
        s.starts = r.times("starts");
        s.calls = r.text_lists("calls");
        s.gone = r.id_texts("gone");
        return s;
    }

    // Reads the queue and the holders again (at start, after a reconnect, after a lost batch),
    // then re-pushes every local visitor's status.
    void resync() {
        if (resyncing_) return;
        resyncing_ = true;
        synced_ = false;
        std::vector<std::string> known;
        for (const auto& [id, lease] : leases_) {
            if (!lease.orphan) known.push_back(std::to_string(id));
        }
        run("snapshot", std::move(known), [this](store_error error, const script_answer& a) {
            resyncing_ = false;
            if (error != store_error::none) return;  // the next (re)connect or tick tries again
            auto s = read_snapshot(a);               // throws before anything changes
            adopt_snapshot(std::move(s), a.now);
        });
    }

    void adopt_snapshot(snapshot s, std::int64_t now_ms) {
        queue_ = waiting_queue();
        for (auto id : s.queue) queue_.push_back(id);
        holders_.clear();
        // Leases: Redis's holders with their calls (a batch about them may have been missed),
        // plus those Redis no longer has at all (lost with its data): those stay, as orphans
        // that this instance ends at their deadline.  The others it knew ended meanwhile, and
        // their hang-ups went to whoever ended them.
        std::unordered_map<std::uint64_t, known_lease> leases;
        for (const auto id : s.gone) {
            if (auto it = leases_.find(id); it != leases_.end()) {
                it->second.orphan = true;
                leases.emplace(id, std::move(it->second));
            }
        }
        for (auto& [id, lease] : leases_) {
            if (lease.orphan) leases.emplace(id, std::move(lease));
        }
        for (std::size_t i = 0; i < s.active.size(); ++i) {
            const auto [id, expires] = s.active[i];
            holder h{i < s.starts.size() ? s.starts[i] : 0, expires};
            holders_[id] = h;
            auto& lease = leases[id];
            lease.expires = h.expires;
            lease.orphan = false;
            if (i < s.calls.size()) {
                for (auto& c : s.calls[i]) lease.calls.push_back(std::move(c));
            }
        }
        leases_ = std::move(leases);
        arm_lease_timer();
        last_seq_ = s.seq;
        mirror_now_ms_ = now_ms;
        synced_ = true;
        gap_since_.reset();
        drain_buffered();
        if (listener_) listener_->on_resync();
        touch();
        advance();
    }

    // ---- time: deadlines, touches, and leases while Redis is away --------------------------

    std::chrono::milliseconds channel_lease() const { return 3 * touch_period(); }
    std::chrono::milliseconds touch_period() const {
        if (options_.touch_period.count() > 0) return options_.touch_period;
        const auto third = std::chrono::duration_cast<std::chrono::milliseconds>(limits_.heartbeat_timeout) / 3;
        return std::clamp(third, std::chrono::milliseconds{200}, std::chrono::milliseconds{5000});
    }

    void arm_deadline(std::int64_t next_ms) {
        if (closing_ || next_ms < 0) return;
        if (armed_deadline_ms_ && *armed_deadline_ms_ <= next_ms && *armed_deadline_ms_ > redis_now()) return;
        armed_deadline_ms_ = next_ms;
        deadline_timer_.expires_at(to_steady(next_ms));
        std::weak_ptr<redis_store_impl> weak = shared_from_this();
        deadline_timer_.async_wait([weak, next_ms](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self || self->armed_deadline_ms_ != next_ms) return;
            self->armed_deadline_ms_.reset();
            self->advance();
        });
    }

    void advance() {
        run("advance", {}, [](store_error, const script_answer&) {});
    }

    // This instance's live channels are signs of life; the touch also says the instance is alive.
    void touch() {
        std::vector<std::string> ids;
        ids.reserve(local_channels_.size());
        for (const auto& [id, c] : local_channels_) ids.push_back(std::to_string(id));
        run("touch", std::move(ids), [](store_error, const script_answer&) {});
    }

    void arm_tick() {
        if (closing_) return;
        tick_timer_.expires_after(std::min(touch_period(), std::chrono::milliseconds{1000}));
        std::weak_ptr<redis_store_impl> weak = shared_from_this();
        tick_timer_.async_wait([weak](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self) return;
            self->on_tick();
            self->arm_tick();
        });
    }

    void on_tick() {
        metrics_.store_up.store(available() ? 1 : 0, std::memory_order_relaxed);
        end_due_leases_locally();
        if (!replicated_) check_replication();
        if (!available()) return;
        const auto now = clock_();
        if (now - last_touch_ >= touch_period()) {
            last_touch_ = now;
            touch();
        }
        if (!synced_ && !resyncing_) resync();
        // A deadline another instance announced while this one was not listening.
        if (!armed_deadline_ms_ || *armed_deadline_ms_ <= redis_now()) advance();
    }

    // Cost safety: a lease this instance knows ends at its deadline here, and its calls are hung
    // up, when Redis cannot do it: while Redis is away (again, harmlessly, by whoever processes the
    // expiry once it is back), and for an orphan (Redis lost it) at any time.
    bool ends_locally(const known_lease& lease) const { return lease.orphan || !available(); }

    void end_due_leases_locally() {
        const auto now_ms = redis_now();
        std::vector<broker_event> events;
        std::vector<std::string> calls;
        for (auto it = leases_.begin(); it != leases_.end();) {
            if (it->second.expires == 0 || it->second.expires > now_ms || !ends_locally(it->second)) {
                ++it;
                continue;
            }
            spdlog::warn("redis store: {}; ending session {} at its deadline from here",
                         it->second.orphan ? "Redis lost it" : "Redis is unreachable", it->first);
            for (auto& c : it->second.calls) calls.push_back(std::move(c));
            broker_event ev{broker_event::kind::ended, it->first};
            ev.reason = end_reason::expired;
            ev.was_active = true;
            events.push_back(std::move(ev));
            holders_.erase(it->first);
            it = leases_.erase(it);
        }
        arm_lease_timer();
        if (!listener_) return;
        if (!events.empty()) listener_->on_events(events, clock_(), false);
        if (!calls.empty()) listener_->on_hang_ups(std::move(calls));
    }

    // Wakes at the earliest deadline among the leases this instance would end itself.
    void arm_lease_timer() {
        if (closing_) return;
        std::optional<std::int64_t> first;
        for (const auto& [id, lease] : leases_) {
            if (lease.expires != 0 && ends_locally(lease) && (!first || lease.expires < *first)) first = lease.expires;
        }
        if (!first) {
            lease_timer_.cancel();
            return;
        }
        lease_timer_.expires_at(to_steady(*first));
        std::weak_ptr<redis_store_impl> weak = shared_from_this();
        lease_timer_.async_wait([weak](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self) return;
            self->end_due_leases_locally();
        });
    }

    void on_link(redis_link_state state) {
        metrics_.store_up.store(state == redis_link_state::up && replicated_ ? 1 : 0, std::memory_order_relaxed);
        if (state != redis_link_state::up) {
            if (was_up_) {
                const auto why = conn_->last_error();
                spdlog::warn("redis store: Redis unreachable ({}); joins answer 503 until it is back", why.empty() ? "reconnecting" : why);
            }
            was_up_ = false;
            end_due_leases_locally();  // and arms the timer for the others
            return;
        }
        if (!was_up_) spdlog::info("redis store: connected as instance {}", instance_);
        was_up_ = true;
        if (!replicated_) check_replication();
        touch();   // before anything expires for want of a sign of life
        advance();
    }

    net::any_io_executor strand_;
    std::function<steady_time()> clock_;
    session_limits limits_;
    redis_store_options options_;
    metrics& metrics_;
    std::string prefix_;
    std::string instance_;
    redis_script script_;
    std::shared_ptr<redis_connection> conn_;
    std::shared_ptr<redis_subscriber> sub_;
    std::shared_ptr<redis_master_locator> locator_;
    net::steady_timer deadline_timer_;
    net::steady_timer tick_timer_;
    net::steady_timer lease_timer_;
    net::steady_timer gap_timer_;
    store_listener* listener_ = nullptr;
    int wait_replicas_ = 0;           // durable admissions: replicas each such write waits for
    bool replicated_ = true;          // false from an unacknowledged durable write until a WAIT succeeds
    bool checking_replication_ = false;
    std::vector<event_batch> uncertain_;     // batches of writes whose replication is not known
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

// The store is shared (its callbacks hold it weakly); the service owns it through this handle.
class redis_store_handle final : public session_store {
public:
    explicit redis_store_handle(std::shared_ptr<redis_store_impl> impl) : impl_(std::move(impl)) {}
    ~redis_store_handle() override { impl_->close(); }

    void set_listener(store_listener* l) override { impl_->set_listener(l); }
    void join(join_request r, done<join_outcome> c) override { impl_->join(std::move(r), std::move(c)); }
    void status(const std::string& t, done<std::optional<entry_status>> c) override { impl_->status(t, std::move(c)); }
    void heartbeat(const std::string& t, done<std::optional<entry_status>> c) override { impl_->heartbeat(t, std::move(c)); }
    void leave(const std::string& t, done<std::optional<entry_status>> c) override { impl_->leave(t, std::move(c)); }
    void force_end_all(done<std::size_t> c) override { impl_->force_end_all(std::move(c)); }
    void reserve_token(const std::string& t, int m, done<token_reservation> c) override { impl_->reserve_token(t, m, std::move(c)); }
    void record_call(std::uint64_t id, const std::string& call, done<call_recording> c) override {
        impl_->record_call(id, call, std::move(c));
    }
    void stats(done<store_stats> c) override { impl_->stats(std::move(c)); }
    void statuses(std::vector<std::uint64_t> ids, done<std::vector<entry_status>> c) override {
        impl_->statuses(std::move(ids), std::move(c));
    }
    void channel_opened(const std::string& t, done<channel_opening> c) override { impl_->channel_opened(t, std::move(c)); }
    void channel_closed(std::uint64_t id) override { impl_->channel_closed(id); }
    void channel_heartbeat(std::uint64_t id) override { impl_->channel_heartbeat(id); }
    void hang_up_done(const std::string& call) override { impl_->hang_up_done(call); }
    void admin_view(done<store_admin_view> c) override { impl_->admin_view(std::move(c)); }
    void end_session(std::uint64_t id, end_reason why, done<bool> c) override { impl_->end_session(id, why, std::move(c)); }
    void set_admission_gate(session_broker::admission_gate) override {}
    void recheck_admissions() override {}
    void remove_queued(std::uint64_t id, done<bool> c) override { impl_->remove_queued(id, std::move(c)); }
    void set_paused(bool p, done<bool> c) override { impl_->set_paused(p, std::move(c)); }
    void change_limits(limits_change l, done<session_limits> c) override { impl_->change_limits(std::move(l), std::move(c)); }
    void reload(const session_limits& l) override { impl_->reload(l); }
    const session_limits& limits() const override { return impl_->limits(); }
    void for_each_queued_status(const std::function<void(const entry_status&)>& f) const override { impl_->for_each_queued_status(f); }
    std::size_t active_count() const override { return impl_->active_count(); }
    std::size_t queue_length() const override { return impl_->queue_length(); }
    std::optional<steady_time> stats_fresh_until() const override { return impl_->stats_fresh_until(); }
    bool available() const override { return impl_->available(); }
    void shutdown(bool end_sessions) override { impl_->shutdown(end_sessions); }

private:
    std::shared_ptr<redis_store_impl> impl_;
};

}  // namespace

std::unique_ptr<session_store> make_redis_store(const net::any_io_executor& strand, const session_limits& limits,
                                                std::function<steady_time()> clock, redis_store_options options,
                                                metrics& counters) {
    auto impl = std::make_shared<redis_store_impl>(strand, limits, std::move(clock), std::move(options), counters);
    impl->start();
    return std::make_unique<redis_store_handle>(std::move(impl));
}

}  // namespace voice_broker
