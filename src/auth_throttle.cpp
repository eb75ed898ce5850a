#include "voice_broker/auth_throttle.hpp"

namespace voice_broker {

std::int64_t auth_throttle::retry_after(const std::string& address, steady_time now) {
    auto it = failures_.find(address);
    if (it == failures_.end()) return 0;
    auto& times = it->second;
    while (!times.empty() && times.front() + window_ <= now) times.pop_front();
    if (times.empty()) {
        failures_.erase(it);
        return 0;
    }
    if (times.size() < max_failures_) return 0;
    return seconds_until(now, times.front() + window_);
}

void auth_throttle::record_failure(const std::string& address, steady_time now) {
    if (failures_.size() >= max_tracked_addresses) forget_old(now);
    auto& times = failures_[address];
    times.push_back(now);
    while (times.size() > max_failures_) times.pop_front();
}

void auth_throttle::forget_old(steady_time now) {
    for (auto it = failures_.begin(); it != failures_.end();) {
        if (it->second.empty() || it->second.back() + window_ <= now) it = failures_.erase(it);
        else ++it;
    }
    if (failures_.size() >= max_tracked_addresses) failures_.clear();  // a flood of addresses: start over
}

}  // namespace voice_broker
