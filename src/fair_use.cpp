#include "voice_broker/fair_use.hpp"

namespace voice_broker {

void keyed_quota::set_limit(std::size_t limit) {
    std::lock_guard lock(mutex_);
    limit_ = limit;
}

bool keyed_quota::try_take(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto& n = held_[key];
    if (limit_ != 0 && n >= limit_) {
        if (n == 0) held_.erase(key);
        return false;
    }
    ++n;
    return true;
}

void keyed_quota::give_back(const std::string& key) {
    std::lock_guard lock(mutex_);
    const auto it = held_.find(key);
    if (it == held_.end()) return;
    if (--it->second == 0) held_.erase(it);
}

std::size_t keyed_quota::held(const std::string& key) const {
    std::lock_guard lock(mutex_);
    const auto it = held_.find(key);
    return it == held_.end() ? 0 : it->second;
}

std::size_t keyed_quota::keys() const {
    std::lock_guard lock(mutex_);
    return held_.size();
}

void keyed_rate::set_limit(std::size_t limit) {
    std::lock_guard lock(mutex_);
    limit_ = limit;
}

std::int64_t keyed_rate::take(const std::string& key, steady_time now) {
    std::lock_guard lock(mutex_);
    if (limit_ == 0) return 0;
    if (events_.size() >= max_keys) forget_idle(now);
    auto& times = events_[key];
    while (!times.empty() && times.front() + window_ <= now) times.pop_front();
    if (times.size() >= limit_) return seconds_until(now, times.front() + window_);
    times.push_back(now);
    return 0;
}

std::size_t keyed_rate::keys() const {
    std::lock_guard lock(mutex_);
    return events_.size();
}

void keyed_rate::forget_idle(steady_time now) {
    for (auto it = events_.begin(); it != events_.end();) {
        if (it->second.empty() || it->second.back() + window_ <= now) it = events_.erase(it);
        else ++it;
    }
    if (events_.size() >= max_keys) events_.clear();  // a flood of addresses: start over
}

}  // namespace voice_broker
