#include "voice_broker/session_broker.hpp"

#include <algorithm>
#include <functional>

namespace voice_broker {

std::string_view to_string(entry_state s) {
    switch (s) {
    case entry_state::active: return "active";
    case entry_state::queued: return "queued";
    case entry_state::ended: return "ended";
    }
    return "ended";
}

session_broker::session_broker(session_limits limits) : limits_(std::move(limits)) {}

session_broker::entry* session_broker::find_live(std::string_view ticket) {
    auto id = ids_.find(ticket);
    if (id == ids_.end()) return nullptr;
    auto& e = entries_.at(id->second);
    return e.state == entry_state::ended ? nullptr : &e;
}

const session_broker::entry* session_broker::find(std::string_view ticket) const {
    auto id = ids_.find(ticket);
    return id == ids_.end() ? nullptr : &entries_.at(id->second);
}

std::string_view session_broker::ticket_of(std::uint64_t entry_id) const {
    const auto it = entries_.find(entry_id);
    return it == entries_.end() ? std::string_view{} : std::string_view(it->second.ticket);
}

session_broker::entry* session_broker::find_live(std::uint64_t id) {
    auto it = entries_.find(id);
    return it == entries_.end() || it->second.state == entry_state::ended ? nullptr : &it->second;
}

// A sign of life: the visitor is here, which also confirms a fresh admission.
void session_broker::touch(entry& e, steady_time now) {
    e.last_seen = now;
    if (e.state == entry_state::active) e.confirmed = true;
    reindex(e);
}

session_broker::entry& session_broker::create(const std::string& ticket, steady_time now) {
    const auto id = next_id_++;
    auto& e = entries_[id];
    e.id = id;
    e.ticket = ticket;
    e.joined_at = now;
    e.last_seen = now;
    ids_[ticket] = id;
    return e;
}

join_outcome session_broker::join(const std::string& fresh_ticket, const std::string* existing, steady_time now) {
    if (existing) {
        if (auto* e = find_live(*existing)) {
            touch(*e, now);  // asking again is a sign of life
            return {join_outcome::kind::existing, make_status(*e, now)};
        }
    }
    const bool slot_free =
        !closed_ && !paused_ && active_.size() < limits_.max_concurrent_users && queue_.empty() && gate_allows(now);
    if (!slot_free && (closed_ || queue_.size() >= limits_.max_queue_length)) {
        return {join_outcome::kind::queue_full, {}};
    }
    auto& e = create(fresh_ticket, now);
    if (slot_free) {
        e.confirmed = true;  // the visitor is here: this very request proves it
        admit(e, now);
    } else {
        // Appending changes nobody else's position or ETA, so no queue_changed event.
        queue_.push_back(e.id);  // the newest id: the queue stays sorted
        reindex(e);
    }
    return {join_outcome::kind::joined, make_status(e, now)};
}

std::optional<entry_status> session_broker::status(std::string_view ticket, steady_time now) const {
    const auto* e = find(ticket);
    if (!e) return std::nullopt;
    return make_status(*e, now);
}

std::optional<entry_status> session_broker::status(std::uint64_t entry_id, steady_time now) const {
    const auto it = entries_.find(entry_id);
    if (it == entries_.end()) return std::nullopt;
    return make_status(it->second, now);
}

std::optional<entry_status> session_broker::heartbeat(std::string_view ticket, steady_time now) {
    auto* e = find_live(ticket);
    if (!e) return status(ticket, now);
    touch(*e, now);
    return make_status(*e, now);
}

void session_broker::heartbeat(std::uint64_t entry_id, steady_time now) {
    if (auto* e = find_live(entry_id)) touch(*e, now);
}

channel_opening session_broker::channel_opened(std::string_view ticket, steady_time now) {
    const auto* known = find(ticket);
    if (!known) return {};
    if (known->state == entry_state::ended) return {channel_opening::kind::ended, make_status(*known, now)};
    auto& e = entries_.at(known->id);
    ++e.open_channels;
    touch(e, now);
    return {channel_opening::kind::opened, make_status(e, now)};
}

void session_broker::channel_closed(std::uint64_t entry_id, steady_time now) {
    auto* e = find_live(entry_id);
    if (!e || e->open_channels == 0) return;
    --e->open_channels;
    e->last_seen = now;  // the heartbeat timeout runs from the moment the channel closed
    reindex(*e);
}

bool session_broker::leave(std::string_view ticket, steady_time now) {
    auto* e = find_live(ticket);
    if (!e) return false;
    end(*e, end_reason::left, now);
    return true;
}

std::size_t session_broker::force_end_all(steady_time now) {
    const std::vector<std::uint64_t> holders(active_.begin(), active_.end());
    for (auto id : holders) end(entries_.at(id), end_reason::forced, now);
    return holders.size();
}

void session_broker::shutdown(steady_time now) {
    closed_ = true;
    const std::vector<std::uint64_t> holders(active_.begin(), active_.end());
    for (auto id : holders) end(entries_.at(id), end_reason::shutdown, now);
    const std::vector<std::uint64_t> waiting(queue_.begin(), queue_.end());
    for (auto id : waiting) end(entries_.at(id), end_reason::shutdown, now);
}

std::vector<std::string> session_broker::close_for_restart(steady_time now) {
    closed_ = true;
    const std::vector<std::uint64_t> holders(active_.begin(), active_.end());
    for (auto id : holders) end(entries_.at(id), end_reason::shutdown, now);
    std::vector<std::string> waiting;
    waiting.reserve(queue_.size());
    for (auto id : queue_) waiting.push_back(entries_.at(id).ticket);
    return waiting;
}

void session_broker::reload(session_limits limits, steady_time now) {
    limits_ = std::move(limits);
    // Deadlines already promised (expiry, warnings) stand; only timeouts follow the new rules.
    for (auto& [id, e] : entries_) {
        if (e.state != entry_state::ended) reindex(e);
    }
    admit_waiting(now);
    note_queue_changed();  // ETAs follow the new rules
    advance(now);
}

bool session_broker::end_session(std::uint64_t entry_id, end_reason why, steady_time now) {
    auto* e = find_live(entry_id);
    if (!e || e->state != entry_state::active) return false;
    end(*e, why, now);
    return true;
}

bool session_broker::remove_queued(std::uint64_t entry_id, steady_time now) {
    auto* e = find_live(entry_id);
    if (!e || e->state != entry_state::queued) return false;
    end(*e, end_reason::removed, now);
    return true;
}

void session_broker::set_paused(bool paused, steady_time now) {
    if (paused_ == paused) return;
    paused_ = paused;
    if (!paused) admit_waiting(now);
    // Every waiting visitor's status says whether admissions are paused.
    note_queue_changed();
}

std::vector<live_entry> session_broker::live_entries() const {
    std::vector<live_entry> out;
    out.reserve(active_.size() + queue_.size());
    for (auto id : active_) {
        const auto& e = entries_.at(id);
        out.push_back({id, entry_state::active, 0, e.joined_at, e.started_at, e.expires_at, e.open_channels > 0});
    }
    std::sort(out.begin(), out.end(), [](const live_entry& a, const live_entry& b) { return a.started_at < b.started_at; });
    std::size_t position = 0;
    for (auto id : queue_) {
        const auto& e = entries_.at(id);
        out.push_back({id, entry_state::queued, ++position, e.joined_at, {}, {}, e.open_channels > 0});
    }
    return out;
}

session_broker::token_reservation session_broker::reserve_token(std::string_view ticket, int max_per_session,
                                                                steady_time now) {
    auto* e = find_live(ticket);
    if (!e || e->state != entry_state::active || now >= e->expires_at) return token_reservation::not_active;
    if (e->tokens_minted >= max_per_session) return token_reservation::limit_reached;
    ++e->tokens_minted;
    touch(*e, now);  // minting proves presence
    return token_reservation::reserved;
}

void session_broker::admit(entry& e, steady_time now) {
    queue_.erase(e.id);
    e.state = entry_state::active;
    e.started_at = now;
    e.expires_at = now + limits_.session_duration;
    e.warning_offsets.clear();
    for (auto w : limits_.warnings) {
        if (w > seconds{0} && w < limits_.session_duration) e.warning_offsets.push_back(w);
    }
    std::sort(e.warning_offsets.begin(), e.warning_offsets.end(), std::greater<>());
    e.warning_offsets.erase(std::unique(e.warning_offsets.begin(), e.warning_offsets.end()), e.warning_offsets.end());
    e.next_warning = 0;
    if (e.open_channels > 0) e.confirmed = true;  // the WebSocket that will carry the news is open
    e.admission_deadline = now + limits_.admission_grace;
    active_.insert(e.id);
    reindex(e);
    broker_event ev{broker_event::kind::admitted, e.id};
    ev.waited_since = e.joined_at;
    ev.status = make_status(e, now);
    emit(std::move(ev));
}

void session_broker::recheck_admissions(steady_time now) {
    advance(now);  // due deadlines first: never admit a visitor who is already gone
    admit_waiting(now);
}

bool session_broker::gate_allows(steady_time now) const {
    if (!gate_) return true;
    std::vector<steady_time> running_until;
    running_until.reserve(active_.size());
    for (auto id : active_) running_until.push_back(entries_.at(id).expires_at);
    // Ended in this step, not yet taken by the listener that books their cost.
    for (const auto& ev : events_) {
        if (ev.what != broker_event::kind::ended || !ev.was_active) continue;
        if (const auto it = entries_.find(ev.entry_id); it != entries_.end()) {
            running_until.push_back(now + (it->second.ended_at - ev.started_at));
        }
    }
    return gate_(now, running_until);
}

void session_broker::admit_waiting(steady_time now) {
    bool admitted = false;
    while (!closed_ && !paused_ && active_.size() < limits_.max_concurrent_users && !queue_.empty()) {
        auto& head = entries_.at(queue_.front());
        if (head.open_channels == 0 && now >= head.last_seen + limits_.heartbeat_timeout) {
            // Gone already (its deadline falls at this same instant): never admit a dead visitor.
            end(head, end_reason::abandoned, now);  // admits the next one in turn
            return;
        }
        if (!gate_allows(now)) break;
        admit(head, now);
        admitted = true;
    }
    if (admitted) note_queue_changed();
}

void session_broker::end(entry& e, end_reason why, steady_time now) {
    const bool was_active = e.state == entry_state::active;
    const bool was_queued = e.state == entry_state::queued;
    if (was_active) active_.erase(e.id);
    if (was_queued) queue_.erase(e.id);
    if (e.deadline) deadlines_.erase({*e.deadline, e.id});
    e.deadline.reset();
    e.state = entry_state::ended;
    e.reason = why;
    e.ended_at = now;
    broker_event ev{broker_event::kind::ended, e.id};
    ev.reason = why;
    ev.was_active = was_active;
    ev.started_at = e.started_at;
    emit(std::move(ev));
    ended_.push_back(e.id);
    // The cap on remembered ends holds at every end, not only at the next deadline: a flood of
    // join+leave cycles must not grow memory until then.
    if (ended_.size() > max_ended_entries) forget_old_ended(now);
    admit_waiting(now);
    // Whoever ended, those still waiting moved up or got a new ETA.
    note_queue_changed();
}

void session_broker::note_queue_changed() {
    if (queue_.empty()) return;
    if (!events_.empty() && events_.back().what == broker_event::kind::queue_changed) return;
    emit({broker_event::kind::queue_changed, 0});
}

std::optional<steady_time> session_broker::compute_deadline(const entry& e) const {
    std::optional<steady_time> at;
    auto consider = [&at](steady_time t) {
        if (!at || t < *at) at = t;
    };
    if (e.state == entry_state::ended) return std::nullopt;
    if (e.open_channels == 0) consider(e.last_seen + limits_.heartbeat_timeout);
    if (e.state == entry_state::active) {
        consider(e.expires_at);
        if (e.next_warning < e.warning_offsets.size()) consider(e.expires_at - e.warning_offsets[e.next_warning]);
        if (!e.confirmed) consider(e.admission_deadline);
    }
    return at;
}

void session_broker::reindex(entry& e) {
    const auto at = compute_deadline(e);
    if (at == e.deadline) return;
    if (e.deadline) deadlines_.erase({*e.deadline, e.id});
    e.deadline = at;
    if (at) deadlines_.insert({*at, e.id});
}

void session_broker::process(entry& e, steady_time now) {
    if (e.state == entry_state::active) {
        if (now >= e.expires_at) return end(e, end_reason::expired, now);
        if (!e.confirmed && now >= e.admission_deadline) return end(e, end_reason::abandoned, now);
    }
    if (e.open_channels == 0 && now >= e.last_seen + limits_.heartbeat_timeout) {
        return end(e, end_reason::abandoned, now);
    }
    if (e.state == entry_state::active) {
        while (e.next_warning < e.warning_offsets.size() &&
               e.expires_at - e.warning_offsets[e.next_warning] <= now) {
            broker_event ev{broker_event::kind::warning, e.id};
            ev.seconds_left = e.warning_offsets[e.next_warning];
            emit(std::move(ev));
            ++e.next_warning;
        }
    }
    reindex(e);
}

void session_broker::advance(steady_time now) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        const auto id = deadlines_.begin()->second;
        process(entries_.at(id), now);
    }
    forget_old_ended(now);
}

std::optional<steady_time> session_broker::next_deadline() const {
    std::optional<steady_time> at;
    if (!deadlines_.empty()) at = deadlines_.begin()->first;
    if (!ended_.empty()) {
        const auto forget_at = entries_.at(ended_.front()).ended_at + ended_entry_retention;
        if (!at || forget_at < *at) at = forget_at;
    }
    return at;
}

void session_broker::forget_old_ended(steady_time now) {
    while (!ended_.empty()) {
        const auto& e = entries_.at(ended_.front());
        if (ended_.size() <= max_ended_entries && now < e.ended_at + ended_entry_retention) break;
        ids_.erase(e.ticket);
        entries_.erase(ended_.front());
        ended_.pop_front();
    }
}

std::vector<broker_event> session_broker::take_events() {
    std::vector<broker_event> out;
    out.swap(events_);
    return out;
}

slot_schedule session_broker::schedule(std::size_t places, steady_time now) const {
    // When each slot frees, in the worst case: every holder stays until expiry.
    using ns = std::chrono::nanoseconds;
    std::vector<ns> frees;
    frees.reserve(std::max(active_.size(), limits_.max_concurrent_users));
    for (auto id : active_) {
        const auto& e = entries_.at(id);
        frees.push_back(std::max(ns{0}, std::chrono::duration_cast<ns>(e.expires_at - now)));
    }
    return slot_schedule::for_holders(std::move(frees), limits_.max_concurrent_users,
                                      std::chrono::duration_cast<ns>(limits_.session_duration), places);
}

entry_status session_broker::make_status(const entry& e, steady_time now) const {
    entry_status s;
    s.ticket = e.ticket;
    s.entry_id = e.id;
    s.state = e.state;
    s.queue_length = queue_.size();
    s.paused = paused_;
    switch (e.state) {
    case entry_state::active:
        s.started_at = e.started_at;
        s.expires_at = e.expires_at;
        s.remaining_seconds = seconds_until(now, e.expires_at);
        s.last_warning = last_warning(e, now);
        s.confirmed = e.confirmed;
        break;
    case entry_state::queued: {
        s.position = queue_.position(e.id);
        s.eta_seconds = schedule(s.position, now).eta_seconds(s.position);
        break;
    }
    case entry_state::ended:
        s.reason = e.reason;
        break;
    }
    return s;
}

// The offsets are largest first: the last one whose instant has passed is the latest warning.
std::chrono::seconds session_broker::last_warning(const entry& e, steady_time now) {
    std::chrono::seconds fired{0};
    for (auto offset : e.warning_offsets) {
        if (e.expires_at - offset > now) break;
        fired = offset;
    }
    return fired;
}

std::vector<entry_status> session_broker::queued_statuses(steady_time now) const {
    std::vector<entry_status> out;
    out.reserve(queue_.size());
    for_each_queued_status(now, [&out](const entry_status& s) { out.push_back(s); });
    return out;
}

std::vector<active_summary> session_broker::active_sessions() const {
    std::vector<active_summary> out;
    for (auto id : active_) {
        const auto& e = entries_.at(id);
        out.push_back({e.started_at, e.expires_at});
    }
    return out;
}

}  // namespace voice_broker
