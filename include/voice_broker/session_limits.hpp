// The rules the session broker enforces.  Plain values, set once from the config and replaced
// whole on reload (SIGHUP).
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

namespace voice_broker {

struct session_limits {
    std::size_t max_concurrent_users = 1;
    std::size_t max_queue_length = 50;
    std::chrono::seconds session_duration{5 * 60};
    // Seconds before the end at which the holder is warned, largest first (180, 120, 60).
    std::vector<std::chrono::seconds> warnings{std::chrono::seconds{180}, std::chrono::seconds{120},
                                               std::chrono::seconds{60}};
    std::chrono::seconds heartbeat_timeout{30};
    std::chrono::seconds admission_grace{20};
};

}  // namespace voice_broker
