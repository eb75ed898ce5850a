// redis_endpoint: where one Redis server (or Sentinel) listens: a TCP host and port, or a unix
// socket path.  A plain value, parsed without I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace voice_broker {

struct redis_endpoint {
    std::string host;         // a name or an IP literal (IPv6 without brackets); empty for a socket
    std::uint16_t port = 0;
    std::string socket_path;  // set: a unix socket, and host/port are unused

    bool is_unix_socket() const { return !socket_path.empty(); }
    // "127.0.0.1:6379", "[::1]:6379", "unix:/run/redis/redis.sock": for logs and errors.
    std::string to_string() const;
    bool operator==(const redis_endpoint&) const = default;

    // "host:port", "[v6]:port", or "host" when `default_port` is not 0.  nullopt when malformed.
    static std::optional<redis_endpoint> parse_host_port(std::string_view text, std::uint16_t default_port = 0);
};

// REDIS_SENTINELS: "host:port,host:port,..." (the port defaults to 26379); the string is the
// error, naming the bad entry.
std::variant<std::vector<redis_endpoint>, std::string> parse_sentinel_list(std::string_view text);

}  // namespace voice_broker
