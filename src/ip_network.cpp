#include "voice_broker/ip_network.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace voice_broker {

std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view address) {
    std::string text(address);
    if (!text.empty() && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    std::array<std::uint8_t, 16> out{};
    in_addr v4{};
    if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
        out[10] = 0xff;
        out[11] = 0xff;
        std::memcpy(out.data() + 12, &v4, 4);
        return out;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
        std::memcpy(out.data(), &v6, 16);
        return out;
    }
    return std::nullopt;
}

std::optional<ip_network> ip_network::parse(std::string_view text) {
    const auto slash = text.find('/');
    const auto addr = parse_ip(text.substr(0, slash));
    if (!addr) return std::nullopt;
    const bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
    unsigned prefix = v4 ? 32 : 128;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (ec != std::errc{} || ptr != digits.data() + digits.size() || digits.empty()) return std::nullopt;
        if (prefix > (v4 ? 32u : 128u)) return std::nullopt;
    }
    ip_network net;
    net.bytes_ = *addr;
    net.prefix_ = v4 ? prefix + 96 : prefix;
    return net;
}

bool ip_network::contains(std::string_view address) const {
    const auto addr = parse_ip(address);
    if (!addr) return false;
    unsigned bits = prefix_;
    for (std::size_t i = 0; i < 16 && bits > 0; ++i) {
        const unsigned take = bits >= 8 ? 8 : bits;
        const std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - take));
        if (((*addr)[i] & mask) != (bytes_[i] & mask)) return false;
        bits -= take;
    }
    return true;
}

}  // namespace voice_broker
