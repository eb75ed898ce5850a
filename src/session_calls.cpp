#include "voice_broker/session_calls.hpp"

namespace voice_broker {

session_calls::session_calls(call_monitor_settings settings, price_table prices, steady_time session_end,
                             call_monitor::language lang)
    : settings_(std::move(settings)), prices_(std::move(prices)), session_end_(session_end), language_(lang) {}

bool session_calls::add_call(const std::string& call_id, steady_time now) {
    if (stopped_ || calls_.count(call_id)) return false;
    calls_.emplace(call_id, std::make_unique<call_monitor>(settings_, prices_, session_end_, language_, !wrap_up_sent_, now));
    return true;
}

const call_monitor* session_calls::call(const std::string& call_id) const {
    const auto it = calls_.find(call_id);
    return it == calls_.end() ? nullptr : it->second.get();
}

void session_calls::sideband_opened(const std::string& call_id, steady_time now) {
    const auto it = calls_.find(call_id);
    if (stopped_ || it == calls_.end()) return;
    it->second->sideband_opened(now);
    collect(call_id, *it->second, now);
}

void session_calls::sideband_ended(const std::string& call_id, const sideband_end_info& why, steady_time now) {
    const auto it = calls_.find(call_id);
    if (stopped_ || it == calls_.end()) return;
    it->second->sideband_ended(why, now);
    collect(call_id, *it->second, now);
}

void session_calls::on_event(const std::string& call_id, const nlohmann::json& event, steady_time now) {
    const auto it = calls_.find(call_id);
    if (stopped_ || it == calls_.end()) return;
    it->second->on_event(event, now);
    collect(call_id, *it->second, now);
}

void session_calls::on_timer(steady_time now) {
    if (stopped_) return;
    for (auto& [id, monitor] : calls_) {
        monitor->on_timer(now);
        collect(id, *monitor, now);
        if (stopped_) return;
    }
}

void session_calls::set_language(call_monitor::language lang) {
    language_ = lang;
    for (auto& [id, monitor] : calls_) monitor->set_language(lang);
}

void session_calls::stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& [id, monitor] : calls_) {
        monitor->stop();
        monitor->take_actions();  // nothing of it matters now
        actions_.push_back({id, {.what = monitor_action::kind::close_sideband}});
    }
}

bool session_calls::others_alive(const std::string& call_id) const {
    for (const auto& [id, monitor] : calls_) {
        if (id != call_id && monitor->alive()) return true;
    }
    return false;
}

bool session_calls::all_idle(steady_time now) const {
    for (const auto& [id, monitor] : calls_) {
        if (!monitor->alive()) continue;
        const auto at = monitor->idle_at();  // nullopt: active, unwatched, or off
        if (!at || now < *at) return false;
    }
    return true;
}

// Applies the session's rules to what one call decided, and passes the rest on.
void session_calls::collect(const std::string& call_id, call_monitor& monitor, steady_time now) {
    for (auto& a : monitor.take_actions()) {
        if (stopped_) return;
        switch (a.what) {
        case monitor_action::kind::wrap_up_sent:
            wrap_up_sent_ = true;
            for (auto& [id, other] : calls_) {
                if (id != call_id) other->wrap_up_done_elsewhere();
            }
            break;
        case monitor_action::kind::idle:
            if (!all_idle(now)) continue;  // another call is busy or unwatched
            actions_.push_back({call_id, std::move(a)});
            stop();
            return;
        case monitor_action::kind::call_lost:
            if (others_alive(call_id)) {  // the page opened another call within the grace
                // The calls left may all be silent already; they reported it while this one lived.
                if (all_idle(now)) {
                    actions_.push_back({call_id, {.what = monitor_action::kind::idle}});
                    stop();
                    return;
                }
                continue;
            }
            actions_.push_back({call_id, std::move(a)});
            stop();
            return;
        default:
            break;
        }
        actions_.push_back({call_id, std::move(a)});
    }
}

std::optional<steady_time> session_calls::next_deadline() const {
    if (stopped_) return std::nullopt;
    std::optional<steady_time> next;
    for (const auto& [id, monitor] : calls_) {
        const auto t = monitor->next_deadline();
        if (t && (!next || *t < *next)) next = t;
    }
    return next;
}

token_usage session_calls::usage() const {
    token_usage sum;
    for (const auto& [id, monitor] : calls_) sum += monitor->usage();
    return sum;
}

usd_amount session_calls::cost() const {
    usd_amount sum;
    for (const auto& [id, monitor] : calls_) sum += monitor->cost();
    return sum;
}

bool session_calls::usage_complete() const {
    if (calls_.empty()) return false;
    for (const auto& [id, monitor] : calls_) {
        if (!monitor->usage_complete() || !monitor->all_usage_priced()) return false;
    }
    return true;
}

}  // namespace voice_broker
