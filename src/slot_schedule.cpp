#include "voice_broker/slot_schedule.hpp"

#include <algorithm>
#include <functional>
#include <queue>

namespace voice_broker {

slot_schedule::slot_schedule(std::vector<duration> frees, duration session, std::size_t places)
    : session_(session) {
    if (frees.empty()) return;
    std::sort(frees.begin(), frees.end());
    // Periodic from the start: giving the first slot to the next visitor moves it to first + session,
    // which is at or after the last slot, so the order of the slots never changes.
    if (frees.back() - frees.front() <= session) {
        cycle_ = std::move(frees);
        return;
    }
    // A holder outlasts the session length.  Simulate until the slots are within one session of
    // each other again (or the places asked about run out), as the periodic case starts from.
    auto last = frees.back();
    std::priority_queue<duration, std::vector<duration>, std::greater<>> heap(std::greater<>{}, std::move(frees));
    while (simulated_.size() < places && last - heap.top() > session) {
        const auto t = heap.top();
        heap.pop();
        simulated_.push_back(t);
        heap.push(t + session);
        last = std::max(last, t + session);
    }
    cycle_.reserve(heap.size());
    while (!heap.empty()) {
        cycle_.push_back(heap.top());
        heap.pop();
    }
}

slot_schedule slot_schedule::for_holders(std::vector<duration> frees, std::size_t slots, duration session, std::size_t places) {
    for (std::size_t i = frees.size(); i < slots; ++i) frees.push_back(duration{0});
    if (frees.size() > slots) {
        const auto extra = static_cast<std::ptrdiff_t>(frees.size() - slots);
        std::nth_element(frees.begin(), frees.begin() + extra, frees.end());
        frees.erase(frees.begin(), frees.begin() + extra);
    }
    return slot_schedule(std::move(frees), session, places);
}

slot_schedule::duration slot_schedule::wait(std::size_t place) const {
    if (place == 0 || cycle_.empty()) return duration{0};
    if (place <= simulated_.size()) return simulated_[place - 1];
    const auto after = place - 1 - simulated_.size();
    const auto rounds = static_cast<duration::rep>(after / cycle_.size());
    // Saturates at a hundred years (a million places of day-long sessions would overflow).
    constexpr duration cap = std::chrono::hours{24 * 366 * 100};
    const auto first = cycle_[after % cycle_.size()];
    if (first >= cap || (session_.count() > 0 && rounds > (cap - first) / session_)) return cap;
    return first + session_ * rounds;
}

std::int64_t slot_schedule::eta_seconds(std::size_t place) const {
    const auto t = wait(place).count();
    return (t + 999'999'999) / 1'000'000'000;
}

}  // namespace voice_broker
