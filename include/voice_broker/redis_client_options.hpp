// redis_client_options: how a redis_connection or redis_subscriber reaches its server, and every
// time limit it keeps.  One struct, every value explicit; the defaults suit a Redis on the same
// host or LAN.
#pragma once

#include "voice_broker/redis_url.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace voice_broker {

class redis_master_locator;

// A connection's state as its observers see it.  `connecting` only before the first attempt has
// finished; afterwards it is `up` or `down` until close().
enum class redis_link_state { connecting, up, down, closed };

const char* to_string(redis_link_state state);

struct redis_client_options {
    // Endpoint, credentials and database.  With `sentinel` set, only the credentials and the
    // database are used: the master's address comes from the sentinels.
    redis_url url;
    // Set: ask these sentinels where the master is on every (re)connect, require ROLE "master",
    // follow +switch-master, and treat READONLY / MASTERDOWN replies as "find the master again".
    // It must live on the same executor as the connection.
    std::shared_ptr<redis_master_locator> sentinel;
    // CLIENT SETNAME on every connect (letters, digits, '-', '_', ':'); empty: none.
    std::string client_name;
    // How log lines name this client ("redis <log_name>: ..."); empty: "connection" or "subscriber".
    std::string log_name;
    // false: connects and losses are logged at debug level only (short-lived helper connections,
    // such as the sentinel queries).
    bool log_at_info = true;

    // From the start of a connect (name resolution, TCP connect, AUTH, SELECT, PING, ROLE, and for
    // a subscriber every SUBSCRIBE confirmed) to "up".  A paused or unreachable server fails it.
    std::chrono::milliseconds connect_timeout{1000};
    // Back-off between failed attempts: doubling from min to max, jittered.
    std::chrono::milliseconds reconnect_delay_min{50};
    std::chrono::milliseconds reconnect_delay_max{2000};

    // redis_connection: commands waiting or in flight beyond this are refused (queue_full).
    std::size_t max_pending_commands = 10000;

    // redis_subscriber: how often an idle subscription proves the server still answers (a
    // SUBSCRIBE of a private probe channel that must be confirmed within connect_timeout).
    // Without it, a silently vanished server would leave the subscriber deaf.  0: never.
    std::chrono::milliseconds subscriber_probe_interval{2000};
};

}  // namespace voice_broker
