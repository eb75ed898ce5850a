// redis_store_timekeeping: time in the Redis store.  Redis's clock is learnt from every answer
// (an offset to this process's steady clock); the earliest deadline any batch announced arms a
// timer that asks Redis to process what is due; a tick touches this instance's live channels and
// notices deadlines it missed.  While Redis cannot be reached (or for a lease Redis lost), every
// lease this instance knows ends at its deadline here and its calls are hung up from here.
#include "redis_store_impl.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace voice_broker::redis_store_detail {

// Redis's clock in this process's steady time: offset = Redis ms - local steady ms.
void redis_store_impl::note_redis_time(std::int64_t redis_now_ms) {
    offset_ms_ = redis_now_ms - ms(clock_().time_since_epoch());
    clock_known_ = true;
}

std::chrono::milliseconds redis_store_impl::touch_period() const {
    if (options_.touch_period.count() > 0) return options_.touch_period;
    const auto third = std::chrono::duration_cast<std::chrono::milliseconds>(limits_.heartbeat_timeout) / 3;
    return std::clamp(third, std::chrono::milliseconds{200}, std::chrono::milliseconds{5000});
}

void redis_store_impl::arm_deadline(std::int64_t next_ms) {
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

void redis_store_impl::advance() {
    run("advance", {}, [](store_error, const script_answer&) {});
}

// This instance's live channels are signs of life; the touch also says the instance is alive.
void redis_store_impl::touch() {
    std::vector<std::string> ids;
    ids.reserve(local_channels_.size());
    for (const auto& [id, c] : local_channels_) ids.push_back(std::to_string(id));
    run("touch", std::move(ids), [](store_error, const script_answer&) {});
}

void redis_store_impl::arm_tick() {
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

void redis_store_impl::on_tick() {
    metrics_.store_up.store(available() ? 1 : 0, std::memory_order_relaxed);
    end_due_leases_locally();
    count_replicas();
    if (!replicated_) check_replication();
    if (!available()) return;
    const auto now = clock_();
    if (now - last_touch_ >= touch_period()) {
        last_touch_ = now;
        touch();
    }
    if (!synced_ && !resyncing_) resync();
    take_back_untold_joins();
    flush_spend();  // spending kept while Redis was away
    // A deadline another instance announced while this one was not listening.
    if (!armed_deadline_ms_ || *armed_deadline_ms_ <= redis_now()) advance();
}

void redis_store_impl::end_due_leases_locally() {
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
void redis_store_impl::arm_lease_timer() {
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

void redis_store_impl::on_link(redis_link_state state) {
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

}  // namespace voice_broker::redis_store_detail
