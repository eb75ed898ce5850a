// reconnect_backoff: how long to wait before the next connection attempt.  Exponential (doubling
// per failure from `initial` up to `maximum`) with jitter (a uniform draw in [d/2, d]), so that
// many instances that lost the same Redis do not all knock again in the same millisecond.
// Sans-I/O: the caller owns the timer; tests give a seed.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace voice_broker {

class reconnect_backoff {
public:
    reconnect_backoff(std::chrono::milliseconds initial, std::chrono::milliseconds maximum, std::uint64_t seed);

    // The delay before the next attempt; each call counts one more failure.
    std::chrono::milliseconds next_delay();
    // A connection succeeded: the next failure starts again from `initial`.
    void reset() { failures_ = 0; }
    unsigned failures() const { return failures_; }

private:
    std::chrono::milliseconds initial_;
    std::chrono::milliseconds maximum_;
    unsigned failures_ = 0;
    std::mt19937_64 random_;
};

}  // namespace voice_broker
