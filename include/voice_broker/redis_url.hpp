// redis_url: REDIS_URL parsed without I/O.  What to connect to (a TCP endpoint or a unix
// socket), with which credentials, and which database to SELECT.
//
//   redis://[[user]:password@]host[:port][/db]     (default redis://127.0.0.1:6379/0)
//   unix://[[user]:password@]/path/redis.sock[?db=N]
//
// The user and password may be percent-encoded.  rediss:// (TLS) is refused with a message
// saying what to use instead.
#pragma once

#include "voice_broker/redis_endpoint.hpp"

#include <string>
#include <string_view>
#include <variant>

namespace voice_broker {

struct redis_url {
    redis_endpoint endpoint{"127.0.0.1", 6379, {}};
    std::string username;  // a Redis 6 ACL user; empty: AUTH with the password alone
    std::string password;  // secret: never logged; empty: no AUTH
    int database = 0;

    static constexpr std::string_view default_text = "redis://127.0.0.1:6379/0";

    // The string alternative is the error message (it never contains the password).
    static std::variant<redis_url, std::string> parse(std::string_view text);

    // The URL with the password replaced by "***", for logs and error messages.
    std::string redacted() const;

    bool operator==(const redis_url&) const = default;
};

}  // namespace voice_broker
