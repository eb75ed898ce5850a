// redis_store_operations: the visitors' operations of the Redis store (join, status, heartbeat,
// leave, tokens, calls, live channels, stats), each one call of the store's script whose answer
// is read, through the checked reader, into the session_store's types; and the statuses and ETAs
// this instance renders for its own visitors from the mirror.  A join carries the Redis time
// after which it must not run; a reply field that is malformed makes the operation 503.
#include "redis_store_impl.hpp"

#include <algorithm>

namespace voice_broker::redis_store_detail {

void redis_store_impl::join_once(join_request request, done<join_outcome> callback, bool retried) {
    // Before the first answer this instance does not know Redis's clock: no deadline then.
    const auto answer_by = clock_known_ ? redis_now() + ms(options_.command_timeout) : 0;
    std::vector<std::string> args{request.fresh_ticket, request.existing_ticket.value_or(""), request.client_address,
                                  std::to_string(answer_by)};
    // A place taken by an earlier join that answered 503 goes first: the leave is sent ahead on
    // the same connection, so Redis runs it before this join.
    take_back_untold_joins();
    const bool sent = would_run("join");
    run("join", std::move(args),
        [this, sent, request = std::move(request), callback = std::move(callback), retried](store_error error, const script_answer& a) mutable {
            join_outcome out{join_outcome::kind::queue_full, {}};
            const auto what = error == store_error::none ? a.reader().text_or("what", "") : std::string();
            if (what == "late") {
                // It answered in time, so this instance's idea of Redis's clock was behind (a
                // new master with another clock): once more, with the clock just learned.
                if (!retried) return join_once(std::move(request), std::move(callback), true);
                error = store_error::unavailable;
            }
            // Answered 503 after its script may have run: whatever place it made is nobody's.
            if (error != store_error::none && sent) take_back_later(request.fresh_ticket);
            if (error == store_error::none && what == "budget") out.what = join_outcome::kind::budget_exhausted;
            if (error == store_error::none && what != "full" && what != "budget") {
                out.what = what == "existing" ? join_outcome::kind::existing : join_outcome::kind::joined;
                out.status = status_from(a.reader().object("status"));
            }
            callback(error, std::move(out));
        });
}

void redis_store_impl::status(const std::string& ticket, done<std::optional<entry_status>> callback) {
    run_for_status("status", ticket, std::move(callback));
}

void redis_store_impl::heartbeat(const std::string& ticket, done<std::optional<entry_status>> callback) {
    run_for_status("heartbeat", ticket, std::move(callback));
}

void redis_store_impl::leave(const std::string& ticket, done<std::optional<entry_status>> callback) {
    run_for_status("leave", ticket, std::move(callback));
}

void redis_store_impl::force_end_all(done<std::size_t> callback) {
    run("force_end_all", {}, [callback = std::move(callback)](store_error error, const script_answer& a) {
        callback(error, error == store_error::none ? a.reader().count_or("ended", 0) : 0);
    });
}

void redis_store_impl::reserve_token(const std::string& ticket, int max_per_session, done<token_reservation> callback) {
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

void redis_store_impl::record_call(std::uint64_t entry_id, const std::string& call_id, done<call_recording> callback) {
    run("record_call", {std::to_string(entry_id), call_id, std::to_string(max_calls)},
        [callback = std::move(callback)](store_error error, const script_answer& a) {
            const auto what = error == store_error::none ? a.reader().text_or("what", "") : std::string();
            const auto out = what == "recorded" ? call_recording::recorded
                             : what == "limit"  ? call_recording::limit_reached
                                                : call_recording::not_active;
            callback(error, out);
        });
}

void redis_store_impl::stats(done<store_stats> callback) {
    run("stats", {}, [this, callback = std::move(callback)](store_error error, const script_answer& a) {
        store_stats out;
        out.limits = limits_;
        out.paused = shared_.paused;
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

void redis_store_impl::statuses(std::vector<std::uint64_t> entry_ids, done<std::vector<entry_status>> callback) {
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

void redis_store_impl::channel_opened(const std::string& ticket, done<channel_opening> callback) {
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

void redis_store_impl::channel_closed(std::uint64_t entry_id) {
    auto it = local_channels_.find(entry_id);
    if (it == local_channels_.end()) return;
    if (--it->second.count == 0) local_channels_.erase(it);
    run("channel_close", {std::to_string(entry_id)}, [](store_error, const script_answer&) {});
}

void redis_store_impl::channel_heartbeat(std::uint64_t entry_id) {
    run("channel_heartbeat", {std::to_string(entry_id)}, [](store_error, const script_answer&) {});
}

void redis_store_impl::hang_up_done(const std::string& call_id) {
    for (auto& [id, lease] : leases_) std::erase(lease.calls, call_id);
    run("hangup_done", {call_id}, [](store_error, const script_answer&) {});
}

void redis_store_impl::for_each_queued_status(const std::function<void(const entry_status&)>& f) const {
    const auto now_ms = mirror_now_ms_;
    const auto etas = schedule(queue_.size(), now_ms);
    entry_status s;
    s.state = entry_state::queued;
    s.paused = shared_.paused;
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

void redis_store_impl::run_for_status(const std::string& op, const std::string& ticket, done<std::optional<entry_status>> callback) {
    run(op, {ticket}, [this, callback = std::move(callback)](store_error error, const script_answer& a) {
        std::optional<entry_status> out;
        if (error == store_error::none && a.reader().has("status")) out = status_from(a.reader().object("status"));
        callback(error, std::move(out));
    });
}

slot_schedule redis_store_impl::schedule(std::size_t places, std::int64_t now_ms) const {
    std::vector<slot_schedule::duration> frees;
    frees.reserve(holders_.size());
    for (const auto& [id, h] : holders_) frees.emplace_back(std::chrono::milliseconds{std::max<std::int64_t>(0, h.expires - now_ms)});
    return slot_schedule::for_holders(std::move(frees), limits_.max_concurrent_users,
                                      std::chrono::duration_cast<slot_schedule::duration>(limits_.session_duration), places);
}

// A status document of the script (status_of in redis_store.lua).  Throws malformed_reply.
entry_status redis_store_impl::status_from(const script_doc& s) const {
    const auto now_ms = s.now();
    entry_status out;
    out.entry_id = s.has("id") ? s.id("id") : 0;
    out.ticket = s.text_or("t", "");
    out.queue_length = s.count_or("ql", 0);
    const auto st = s.text_or("st", "e");
    if (st == "q") {
        out.state = entry_state::queued;
        out.paused = s.small_or("pd", 0) == 1;
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
        out.last_warning = std::chrono::seconds{static_cast<std::int64_t>(s.count_or("lw", 0))};
    } else {
        out.state = entry_state::ended;
        out.reason = reason_from(s.text_or("r", "left"));
    }
    return out;
}

}  // namespace voice_broker::redis_store_detail
