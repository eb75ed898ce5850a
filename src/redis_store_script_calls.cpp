// redis_store_script_calls: how the Redis store runs its script.  Each operation is one EVALSHA
// with the instance's limits in front of its arguments; the answer is checked (redis_store_reader)
// and its common parts (Redis's clock, the next deadline, hang-ups handed over, the batch) are
// taken before the operation reads its own.  With durable admissions, a write that may admit, end
// or record a call is followed by WAIT, and its batch is published by this instance only once
// enough replicas hold it; until a write is seen to reach them again, durable writes answer 503.
// With Sentinel, "enough" is never more than the replicas the sentinels could promote (the
// census, asked every tick): after a failover that left the new master without one, waiting
// would refuse every admission and protect nothing.
#include "redis_store_impl.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace voice_broker::redis_store_detail {

namespace {

// A failed script call for a log line: the error's code (its first word: BUSY, NOSCRIPT,
// READONLY...), never the rest of its text, which Redis may relay from anyone (a script's error
// message, a client's PUBLISH) and which could carry anything, a secret included.
std::string failure_of(std::error_code ec, const redis_reply& reply) {
    if (ec) return ec.message();
    if (!reply.is_error()) return "an answer that is not a bulk string";
    std::string code;
    for (char c : reply.text) {
        if (!(std::isupper(static_cast<unsigned char>(c)) || c == '_') || code.size() == 24) break;
        code += c;
    }
    return "-" + (code.empty() ? std::string("ERR") : code) + " (" + std::to_string(reply.text.size()) + " bytes)";
}

}  // namespace

std::vector<std::string> redis_store_impl::argv(const std::string& op, std::vector<std::string> args, int wait) const {
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
                                 std::to_string(wait > 0 || options_.keep_batches ? options_.batch_retention.count() : 0),
                                 wait > 0 ? "1" : "0",
                                 admissions_held(op) ? "1" : "0"};
    for (auto& b : budget_argv()) out.push_back(std::move(b));
    for (auto& a : args) out.push_back(std::move(a));
    return out;
}

bool redis_store_impl::may_admit(const std::string& op) {
    return op == "join" || op == "leave" || op == "force_end_all" || op == "advance" || op == "end_session" ||
           op == "remove_queued" || op == "set_paused" || op == "change_limits";
}

int redis_store_impl::replicas_for(const std::string& op) const {
    return may_admit(op) || op == "record_call" ? replicas_to_wait() : 0;
}

int redis_store_impl::replicas_to_wait() const {
    return promotable_ ? std::min(wait_replicas_, *promotable_) : wait_replicas_;
}

void redis_store_impl::count_replicas() {
    if (!census_ || counting_ || closing_) return;
    counting_ = true;
    std::weak_ptr<redis_store_impl> weak = shared_from_this();
    census_->count([weak](std::error_code ec, int promotable) {
        auto self = weak.lock();
        if (!self || self->closing_) return;
        self->counting_ = false;
        // No sentinel answered: wait for as many as configured (the safe side).
        const std::optional<int> counted = ec ? std::nullopt : std::optional<int>(promotable);
        const int before = self->replicas_to_wait();
        self->promotable_ = counted;
        const int now = self->replicas_to_wait();
        self->metrics_.store_durable_replicas.store(now, std::memory_order_relaxed);
        if (now == before) return;
        if (now < self->wait_replicas_) {
            spdlog::warn("redis store: the sentinels could promote {} replica(s) of the master; durable writes wait for {} "
                         "(REDIS_WAIT_REPLICAS {}): a failover has no other replica to lose them to",
                         promotable, now, self->wait_replicas_);
        } else {
            spdlog::info("redis store: durable writes wait for {} replica(s) again", now);
        }
        // Fewer to wait for: a WAIT may now succeed where the last one failed.
        if (!self->replicated_) self->check_replication();
    });
}

// Runs one operation.  An unreachable Redis, an error, or an answer that did not come (its
// outcome unknown: the scripts are idempotent by ticket and id, so the caller may ask again)
// all mean store_error::unavailable.  So does a durable write that too few replicas hold.
bool redis_store_impl::would_run(const std::string& op) const {
    if (!conn_ || !conn_->is_up() || closing_) return false;
    // Until a write has been seen to reach the replicas again, no durable one is tried: each
    // would be a change that a failover may undo.
    return replicas_for(op) == 0 || replicated_;
}

void redis_store_impl::run(const std::string& op, std::vector<std::string> args, reply_fn done) {
    if (!would_run(op)) return done(store_error::unavailable, script_answer{});
    std::weak_ptr<redis_store_impl> weak = shared_from_this();
    const int wait = replicas_for(op);
    if (wait > 0) {
        script_.run_replicated(*conn_, {prefix_}, argv(op, std::move(args), wait), wait, options_.settings.wait_timeout,
                               options_.command_timeout + options_.settings.wait_timeout,
                               [weak, op, wait, done = std::move(done)](std::error_code ec, redis_reply reply, std::int64_t acked) {
                                   auto self = weak.lock();
                                   if (!self) return;
                                   self->on_replicated_reply(op, wait, ec, reply, acked, done);
                               });
        return;
    }
    script_.run(*conn_, {prefix_}, argv(op, std::move(args), 0), options_.command_timeout,
                [weak, op, done = std::move(done)](std::error_code ec, redis_reply reply) {
                    auto self = weak.lock();
                    if (!self) return;  // the store is gone: the callback is dropped unrun
                    self->on_reply(op, false, ec, reply, done);
                });
}

// The script's answer, checked (redis_store_reader), or nullopt (counted and logged) when the
// call failed or the answer is malformed.
std::optional<script_answer> redis_store_impl::parse_reply(const std::string& op, std::error_code ec, const redis_reply& reply) {
    if (ec || reply.is_error() || reply.type != redis_reply_type::string) {
        metrics_.store_errors.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("redis store: {} failed: {}", op, failure_of(ec, reply));
        return std::nullopt;
    }
    try {
        return read_answer(reply.text);
    } catch (const malformed_reply& e) {
        malformed(op, e);
        return std::nullopt;
    }
}

void redis_store_impl::malformed(const std::string& op, const malformed_reply& e) {
    metrics_.store_errors.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("redis store: {} answered something that is not the script's answer ({})", op, e.what());
}

void redis_store_impl::on_reply(const std::string& op, bool durable, std::error_code ec, const redis_reply& reply,
                                const reply_fn& done) {
    auto a = parse_reply(op, ec, reply);
    if (!a) return done(store_error::unavailable, script_answer{});
    on_answer(op, durable, std::move(*a), done);
}

void redis_store_impl::on_answer(const std::string& op, bool durable, script_answer a, const reply_fn& done) {
    note_redis_time(a.now);
    arm_deadline(a.next_deadline);
    hand_over_hang_ups(std::move(a.hang_ups));
    note_spend(op, a);
    if (a.batch) {
        // Deferred: the replicas hold it now, so everyone may hear of it.  Either way this
        // instance's listener hears of the change before the caller's answer goes out.
        if (durable) publish(a.batch->raw);
        on_batch(*a.batch);
    }
    answer(op, a, done);
    if (op == "advance" && a.more) advance();
}

// Hands a checked answer to `done`; a field of it that `done` finds malformed makes it
// store_error::unavailable.  (A reply_fn reads every field it needs before it answers.)
void redis_store_impl::answer(const std::string& op, const script_answer& a, const reply_fn& done) {
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
void redis_store_impl::on_replicated_reply(const std::string& op, int wait, std::error_code ec, const redis_reply& reply,
                                           std::int64_t acked, const reply_fn& done) {
    if (ec || reply.is_error() || acked >= wait) return on_reply(op, true, ec, reply, done);
    auto a = parse_reply(op, ec, reply);
    if (!a) return done(store_error::unavailable, script_answer{});
    metrics_.store_errors.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("redis store: {} reached {} of {} replica(s) within {} ms; answering 503 until a write reaches them again",
                 op, std::max<std::int64_t>(acked, 0), wait, options_.settings.wait_timeout.count());
    if (!a->batch) {
        // It admitted, ended and recorded nothing (a join that found its entry, a late one, an
        // advance with nothing due): nothing that anyone could be told of is at risk.
        lose_replication();
        return on_answer(op, true, std::move(*a), done);
    }
    note_redis_time(a->now);
    hand_over_hang_ups(std::move(a->hang_ups));
    uncertain_.push_back(std::move(*a->batch));
    lose_replication();
    done(store_error::unavailable, script_answer{});
}

void redis_store_impl::lose_replication() {
    if (!replicated_) return;
    replicated_ = false;
    metrics_.store_up.store(0, std::memory_order_relaxed);
    conn_->reconnect();
    end_due_leases_locally();  // Redis cannot end them now; arms the timer for the others
}

void redis_store_impl::publish(const json& batch) {
    conn_->command({"PUBLISH", prefix_ + "events", batch.dump()}, options_.command_timeout,
                   [](std::error_code, redis_reply) {});  // lost: the others see a gap, and resync
}

// After a reconnect, or on every tick while durability is lost: a fresh write and a WAIT
// behind it.  When the replicas acknowledge it they hold everything this master had before
// it, so the uncertain batches this master still has are now safe to publish; those it
// lacks (a failover lost them) never happened.
void redis_store_impl::check_replication() {
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
    const int wait = replicas_to_wait();
    conn_->command({"WAIT", std::to_string(wait), std::to_string(options_.settings.wait_timeout.count())},
                   options_.command_timeout + options_.settings.wait_timeout,
                   [weak, found, asked, wait](std::error_code ec, redis_reply reply) {
                       auto self = weak.lock();
                       if (!self) return;
                       self->checking_replication_ = false;
                       if (ec || reply.type != redis_reply_type::integer || reply.integer < wait) return;
                       self->on_replication_back(*found, asked, wait);
                   });
}

void redis_store_impl::on_replication_back(const std::vector<event_batch>& found, std::size_t asked, int wait) {
    spdlog::info("redis store: writes reach {} replica(s) again; {} of {} uncertain batch(es) survived", wait,
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
    take_back_untold_joins();
}

void redis_store_impl::take_back_later(const std::string& fresh_ticket) {
    // Bounded: an outage long enough to fill it leaves the rest to the heartbeat timeout.
    if (untold_joins_.size() >= 10000) untold_joins_.pop_front();
    untold_joins_.push_back(fresh_ticket);
}

// One leave at a time, oldest first; a ticket whose join never ran is simply unknown.
void redis_store_impl::take_back_untold_joins() {
    if (taking_back_ || untold_joins_.empty() || !would_run("leave")) return;
    taking_back_ = true;
    std::weak_ptr<redis_store_impl> weak = shared_from_this();
    run("leave", {untold_joins_.front()}, [weak](store_error error, const script_answer&) {
        auto self = weak.lock();
        if (!self) return;
        self->taking_back_ = false;
        if (error != store_error::none) return;  // the next tick tries again
        self->untold_joins_.pop_front();
        self->take_back_untold_joins();
    });
}

void redis_store_impl::hand_over_hang_ups(std::vector<std::string> calls) {
    if (!calls.empty() && listener_) listener_->on_hang_ups(std::move(calls));
}

}  // namespace voice_broker::redis_store_detail
