// redis_probe: `--check-config`'s question "is this Redis reachable, and does AUTH work?".  A
// blocking call with its own io_context and a short deadline, for use before the server runs.
#pragma once

#include "voice_broker/redis_master_locator.hpp"
#include "voice_broker/redis_url.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace voice_broker {

struct redis_probe_result {
    bool reachable = false;
    // "PONG from 127.0.0.1:6379 (db 0) in 0.4 ms", or what failed and what to do.  No secrets.
    std::string detail;
};

// Connects as the server would (through the sentinels when given; AUTH, SELECT, ROLE), sends
// PING, and answers within about `timeout`.
redis_probe_result probe_redis(const redis_url& url, const std::optional<redis_sentinel_settings>& sentinel,
                               std::chrono::milliseconds timeout);

}  // namespace voice_broker
