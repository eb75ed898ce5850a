#include "voice_broker/reconnect_backoff.hpp"

#include <algorithm>

namespace voice_broker {

reconnect_backoff::reconnect_backoff(std::chrono::milliseconds initial, std::chrono::milliseconds maximum,
                                     std::uint64_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds{0})),
      maximum_(std::max(maximum, initial_)),
      random_(seed) {}

std::chrono::milliseconds reconnect_backoff::next_delay() {
    // initial * 2^failures, computed without overflow: stop doubling once past the maximum.
    auto ceiling = initial_;
    for (unsigned i = 0; i < failures_ && ceiling < maximum_; ++i) ceiling *= 2;
    ceiling = std::min(ceiling, maximum_);
    ++failures_;
    if (ceiling.count() <= 1) return ceiling;
    std::uniform_int_distribution<std::int64_t> draw(ceiling.count() / 2, ceiling.count());
    return std::chrono::milliseconds{draw(random_)};
}

}  // namespace voice_broker
