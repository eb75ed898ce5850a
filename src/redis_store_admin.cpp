// redis_store_admin: the operator's controls in redis mode.  Each is one atomic script run
// (redis_store_admin.lua) on Redis's clock, like the visitors' operations, so an operator on any
// instance sees and controls every instance's visitors: the view reads the holders and the queue
// from Redis, an end or a removal is published to every instance in the batch, and the pause and
// the operator's limits live in Redis (every instance's next run obeys them; a "cfg" event updates
// every mirror).  The cost guard's admission gate is this instance's own: it is asked before each
// script this instance runs, and a closed gate makes that run admit nobody (another instance's
// gate decides for its own runs).
#include "redis_store_impl.hpp"

#include <algorithm>

namespace voice_broker::redis_store_detail {

namespace {

admin_entry entry_from(const script_doc& e, entry_state state, std::size_t position,
                       const std::function<steady_time(std::int64_t)>& to_steady) {
    admin_entry out;
    out.entry.entry_id = e.id("id");
    out.entry.state = state;
    out.entry.position = position;
    out.entry.joined_at = to_steady(e.time_or("j", e.now()));
    if (state == entry_state::active) {
        out.entry.started_at = to_steady(e.time_or("s", e.now()));
        out.entry.expires_at = to_steady(e.time_or("x", e.now()));
    }
    out.entry.connected = e.small_or("ch", 0) == 1;
    out.client_address = e.text_or("ip", "");
    out.instance = e.text_or("in", "");
    out.call_connected = e.small_or("cl", 0) == 1;
    return out;
}

}  // namespace

void redis_store_impl::adopt_rules(const shared_rules& rules) {
    shared_ = rules;
    limits_ = config_limits_;
    if (rules.users) limits_.max_concurrent_users = *rules.users;
    if (rules.session) limits_.session_duration = std::chrono::duration_cast<std::chrono::seconds>(*rules.session);
}

store_admin_view redis_store_impl::read_admin_view(const script_answer& a) const {
    const auto r = a.reader();
    const auto steady = [this](std::int64_t t) { return to_steady(t); };
    store_admin_view out;
    for (const auto& e : r.objects("holders")) out.entries.push_back(entry_from(e, entry_state::active, 0, steady));
    std::sort(out.entries.begin(), out.entries.end(),
              [](const admin_entry& x, const admin_entry& y) { return x.entry.started_at < y.entry.started_at; });
    std::size_t position = 0;
    for (const auto& e : r.objects("queued")) out.entries.push_back(entry_from(e, entry_state::queued, ++position, steady));
    for (const auto& i : r.objects("instances")) {
        out.instances.push_back({i.text_or("id", ""), static_cast<std::int64_t>(i.count_or("ago", 0)), i.count_or("n", 0)});
    }
    const auto day = r.counts("today");
    if (day.size() == 3) out.today = shared_usage{day[0], day[1], std::chrono::milliseconds{static_cast<std::int64_t>(day[2])}};
    return out;
}

void redis_store_impl::admin_view(done<store_admin_view> callback) {
    run("admin_view", {}, [this, callback = std::move(callback)](store_error error, const script_answer& a) {
        store_admin_view out;
        if (error == store_error::none) {
            out = read_admin_view(a);
            adopt_rules(read_rules(a.reader().object("cfg")));
        }
        out.paused = shared_.paused;
        out.limits = limits_;
        callback(error, std::move(out));
    });
}

void redis_store_impl::end_session(std::uint64_t entry_id, end_reason why, done<bool> callback) {
    run("end_session", {std::to_string(entry_id), std::string(to_string(why))},
        [callback = std::move(callback)](store_error error, const script_answer& a) {
            const bool ended = error == store_error::none && a.reader().small_or("done", 0) == 1;
            callback(error, ended);
        });
}

void redis_store_impl::remove_queued(std::uint64_t entry_id, done<bool> callback) {
    run("remove_queued", {std::to_string(entry_id)}, [callback = std::move(callback)](store_error error, const script_answer& a) {
        const bool removed = error == store_error::none && a.reader().small_or("done", 0) == 1;
        callback(error, removed);
    });
}

void redis_store_impl::set_paused(bool paused, done<bool> callback) {
    run("set_paused", {paused ? "1" : "0"}, [callback = std::move(callback)](store_error error, const script_answer& a) {
        const bool now_paused = error == store_error::none && a.reader().small_or("paused", 0) == 1;
        callback(error, now_paused);
    });
}

void redis_store_impl::change_limits(limits_change change, done<session_limits> callback) {
    std::vector<std::string> args{change.max_concurrent_users ? std::to_string(*change.max_concurrent_users) : std::string(),
                                  change.session_duration ? std::to_string(ms(*change.session_duration)) : std::string()};
    run("change_limits", std::move(args), [this, callback = std::move(callback)](store_error error, const script_answer& a) {
        if (error == store_error::none) adopt_rules(read_rules(a.reader().object("cfg")));
        callback(error, limits_);
    });
}

// The gate, asked (as the memory store's broker asks it) only when the run could admit someone
// as far as this instance's mirror knows: a join with a slot free and nobody waiting, or any
// other run that may admit while somebody waits.  The holders' deadlines are the mirror's.
bool redis_store_impl::admissions_held(const std::string& op) const {
    if (!gate_ || !may_admit(op)) return false;
    const bool slot_free = holders_.size() < limits_.max_concurrent_users;
    if (op == "join" ? !(slot_free && queue_.empty()) : queue_.empty()) return false;
    std::vector<steady_time> running_until;
    running_until.reserve(holders_.size());
    for (const auto& [id, h] : holders_) running_until.push_back(to_steady(h.expires));
    return !gate_(clock_(), running_until);
}

void redis_store_impl::recheck_admissions() { advance(); }

void redis_store_impl::reload(const session_limits& limits) {
    config_limits_ = limits;
    adopt_rules(shared_);
}

}  // namespace voice_broker::redis_store_detail
