// redis_script: one Lua script, run with EVALSHA so that only its SHA1 travels per call.  When
// Redis does not know it (NOSCRIPT: after a restart, SCRIPT FLUSH or a failover), the script is
// loaded and run once more, transparently; a second NOSCRIPT is returned as is.
//
// run_replicated() adds "WAIT replicas timeout" right behind the script, pipelined, so that the
// caller learns how many replicas hold the script's writes before it tells anyone.
#pragma once

#include "voice_broker/redis_connection.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace voice_broker {

class redis_script {
public:
    explicit redis_script(std::string source);

    const std::string& source() const { return source_; }
    const std::string& sha1() const { return sha1_; }  // 40 lowercase hex digits, as Redis names it

    // EVALSHA sha1 #keys keys... args...; `handler` runs once, on the connection's executor.  The
    // deadline covers the retry after NOSCRIPT too.
    void run(redis_connection& connection, std::vector<std::string> keys, std::vector<std::string> args,
             std::chrono::milliseconds timeout, redis_connection::reply_handler handler) const;

    // The script, then WAIT `replicas` `wait_timeout`.  `replicas_acknowledged` is WAIT's answer (how
    // many replicas have the writes; fewer than asked after wait_timeout), or -1 when the script
    // failed (then WAIT's answer means nothing) or WAIT itself got no integer.  `timeout` must
    // exceed wait_timeout: WAIT holds the connection until it answers.
    using replicated_handler =
        std::function<void(std::error_code error, redis_reply reply, std::int64_t replicas_acknowledged)>;
    void run_replicated(redis_connection& connection, std::vector<std::string> keys, std::vector<std::string> args,
                        int replicas, std::chrono::milliseconds wait_timeout, std::chrono::milliseconds timeout,
                        replicated_handler handler) const;

private:
    std::string source_;
    std::string sha1_;
};

}  // namespace voice_broker
