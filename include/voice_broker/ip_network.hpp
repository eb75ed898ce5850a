// ip_network: an address or CIDR block (IPv4 or IPv6), for TRUSTED_PROXIES.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace voice_broker {

class ip_network {
public:
    // "10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8".  nullopt when malformed.
    static std::optional<ip_network> parse(std::string_view text);

    // True when `address` (textual, as the socket reports it) lies in the block.
    bool contains(std::string_view address) const;

private:
    std::array<std::uint8_t, 16> bytes_{};  // IPv4 stored as IPv4-mapped IPv6
    unsigned prefix_ = 128;
};

// Normalises an address to 16 bytes (IPv4 becomes ::ffff:a.b.c.d); nullopt when malformed.
std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view address);

}  // namespace voice_broker
