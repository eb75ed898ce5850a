// auth_throttle: slows down guessing of the admin token.  After `max_failures` wrong tokens from
// one address within `window`, that address is refused until the window has passed.  No I/O.
#pragma once

#include "voice_broker/time.hpp"

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>

namespace voice_broker {

class auth_throttle {
public:
    auth_throttle(std::size_t max_failures = 5, std::chrono::seconds window = std::chrono::seconds{60})
        : max_failures_(max_failures), window_(window) {}

    // Seconds until `address` may try again; 0 when it may try now.
    std::int64_t retry_after(const std::string& address, steady_time now);
    void record_failure(const std::string& address, steady_time now);

private:
    void forget_old(steady_time now);

    std::size_t max_failures_;
    std::chrono::seconds window_;
    std::unordered_map<std::string, std::deque<steady_time>> failures_;
    static constexpr std::size_t max_tracked_addresses = 10000;
};

}  // namespace voice_broker
