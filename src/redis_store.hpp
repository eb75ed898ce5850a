// redis_store: the session store of several instances, with Redis as the single source of truth.
//
// Every state change is one atomic Lua script (redis_store.lua) run with EVALSHA; the script reads
// Redis's TIME, applies the broker's rules, and publishes what happened as one numbered batch.
// Each instance subscribes to the batches and keeps a read-only mirror of the queue and the
// holders, from which it renders its own visitors' positions and ETAs; a gap in the numbers, or
// a reconnect, makes it re-read the mirror (and re-push its visitors' statuses).  Every instance
// runs the deadlines at the earliest one any batch announced; the first to ask processes them.
// A session's calls live in Redis: the script that ends it hands the hang-ups to the instance
// that ran it, and a claim that is not reported done passes to a survivor.
//
// While Redis cannot be reached, joins get 503 store_unavailable, and every lease this instance
// knows still ends at its deadline: its calls are hung up from here.
//
// Nothing Redis says is trusted: every answer and batch is read through one checked reader
// (redis_store_reader.hpp); a malformed answer is 503, a malformed batch makes the mirror resync.
// The operator's controls are scripts too (redis_store_admin.lua): an operator on any instance
// sees and steers every instance's visitors; the pause and the operator's limits live in Redis.
// The cost guard's admission gate is this instance's: asked before each of its runs that could
// admit, a closed gate makes that run admit nobody.
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/session_store.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class any_io_executor;
}

namespace voice_broker {

class metrics;

struct redis_store_options {
    store_settings settings;              // REDIS_URL, REDIS_KEY_PREFIX, INSTANCE_ID, Sentinel
    std::chrono::milliseconds command_timeout{1000};
    std::chrono::milliseconds touch_period{0};  // 0: a third of the heartbeat timeout, at most 5 s
    // Durable admissions (settings.wait_replicas > 0): how long Redis keeps a batch whose caller
    // publishes it after WAIT, for looking it up again after a reconnect (and for tests).
    std::chrono::milliseconds batch_retention{60000};
    // Keep every batch for batch_retention, durable or not (tests that audit the scripts' log).
    bool keep_batches = false;
};

// `strand` is the service's; `clock` its notion of now.
std::unique_ptr<session_store> make_redis_store(const boost::asio::any_io_executor& strand, const session_limits& limits,
                                                std::function<steady_time()> clock, redis_store_options options,
                                                metrics& counters);

// The Lua source (for tests that drive the script directly).
const std::string& redis_store_script();

}  // namespace voice_broker
