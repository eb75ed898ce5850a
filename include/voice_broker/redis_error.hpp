// redis_error: why a Redis command got no reply.  A reply that Redis itself gave, even an error
// reply ("-WRONGTYPE ..."), is not one of these: it arrives as a redis_reply.
#pragma once

#include <string>
#include <system_error>

namespace voice_broker {

enum class redis_error {
    // Sent, but no reply before its deadline.  It may still run, or have run.
    timeout = 1,
    // Sent, then the connection dropped before the reply.  It may have run.
    connection_lost,
    // Never sent: no usable connection before the deadline.  It did not run.
    not_connected,
    // Never sent or abandoned: the client was closed (at shutdown).  If it had been sent, it may have run.
    closed,
    // Refused at once: too many commands already wait for Redis.  It did not run.
    queue_full,
    // No sentinel named a master (every sentinel down, or none knows the master name).
    no_master,
    // Refused at once: a command without a single argument.  It did not run.
    empty_command,
};

const std::error_category& redis_category();
std::error_code make_error_code(redis_error e);

// True when a command that failed with `ec` may nevertheless have been executed by Redis, so the
// caller must re-read before it tells anyone (timeout, connection_lost, closed).
bool redis_outcome_unknown(std::error_code ec);

}  // namespace voice_broker

template <>
struct std::is_error_code_enum<voice_broker::redis_error> : std::true_type {};
