// redis_store_mirror: the Redis store's local, read-only mirror of the queue and the slot
// holders, kept from the numbered event batches every script publishes.  Batches are applied in
// number order; a gap is waited for a moment and then, like a malformed batch or one that cannot
// follow the mirror, makes the store read the whole state again (a snapshot) and re-push its
// visitors' statuses.  The leases (a holder's deadline and calls) are learnt from any batch at
// once, whatever its order, so that cost safety never waits for a gap.
#include "redis_store_impl.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace voice_broker::redis_store_detail {

// A message on the events channel.  Anything that is not a batch is ignored; a batch that is
// malformed is dropped, and the mirror is read again (it may have missed a real one).
void redis_store_impl::on_message(const std::string& payload) {
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
void redis_store_impl::on_batch(const event_batch& batch) {
    if (synced_ && batch.seq <= last_seq_) return;  // already in the mirror
    learn_leases(batch);
    buffered_.push_back(batch);
    if (synced_) drain_buffered();
}

// Applies the buffered batches that follow the mirror without a gap; waits for a gap.
void redis_store_impl::drain_buffered() {
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

std::chrono::milliseconds redis_store_impl::gap_patience() const {
    return std::chrono::milliseconds{500} + (wait_replicas_ > 0 ? 2 * options_.settings.wait_timeout : std::chrono::milliseconds{0});
}

// Cost safety does not wait for the order of batches: a lease and its calls are known from
// the moment any batch names them (at worst one is ended here again, harmlessly).
void redis_store_impl::learn_leases(const event_batch& batch) {
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
bool redis_store_impl::appends_in_order(const event_batch& batch) const {
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
bool redis_store_impl::apply(const event_batch& batch) {
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
        } else if (ev.what == store_event::kind::config) {
            adopt_rules(ev.rules);  // positions, ETAs and the paused flag: queue_changed below
        }
    }
    if (batch.queue_changed && !queue_.empty()) events.push_back({broker_event::kind::queue_changed, 0});
    if (listener_ && !events.empty()) listener_->on_events(events, to_steady(t), batch.by == instance_);
    return true;
}

broker_event redis_store_impl::admitted(const store_event& ev, std::int64_t t) {
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

broker_event redis_store_impl::ended(const store_event& ev) {
    queue_.erase(ev.id);
    holders_.erase(ev.id);
    leases_.erase(ev.id);
    broker_event out{broker_event::kind::ended, ev.id};
    out.reason = reason_from(ev.reason);
    out.was_active = ev.was_active;
    out.started_at = to_steady(ev.started);
    return out;
}

redis_store_impl::snapshot redis_store_impl::read_snapshot(const script_answer& a) {
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
    if (r.has("cfg")) s.rules = read_rules(r.object("cfg"));
    return s;
}

// Reads the queue and the holders again (at start, after a reconnect, after a lost batch),
// then re-pushes every local visitor's status.
void redis_store_impl::resync() {
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

void redis_store_impl::adopt_snapshot(snapshot s, std::int64_t now_ms) {
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
    if (s.rules) adopt_rules(*s.rules);
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

}  // namespace voice_broker::redis_store_detail
