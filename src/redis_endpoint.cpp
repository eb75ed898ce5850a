#include "voice_broker/redis_endpoint.hpp"

#include <charconv>

namespace voice_broker {

namespace {

std::optional<std::uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    if (text.empty() || text.size() > 5) return std::nullopt;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
}

bool is_ipv6_char(char c) {
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' || c == '.' ||
           c == '%';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

}  // namespace

std::string redis_endpoint::to_string() const {
    if (is_unix_socket()) return "unix:" + socket_path;
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::optional<redis_endpoint> redis_endpoint::parse_host_port(std::string_view text, std::uint16_t default_port) {
    redis_endpoint result;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close == 1) return std::nullopt;
        const auto host = text.substr(1, close - 1);
        for (char c : host) {
            if (!is_ipv6_char(c)) return std::nullopt;
        }
        result.host = std::string(host);
        const auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port_text = rest.substr(1);
            if (port_text.empty()) return std::nullopt;
        }
    } else {
        const auto colon = text.find(':');
        const auto host = text.substr(0, colon);
        if (host.empty()) return std::nullopt;
        for (char c : host) {
            if (!is_host_char(c)) return std::nullopt;  // a bare IPv6 address lands here: it needs brackets
        }
        result.host = std::string(host);
        if (colon != std::string_view::npos) {
            port_text = text.substr(colon + 1);
            if (port_text.empty()) return std::nullopt;
        }
    }
    if (port_text.empty()) {
        if (default_port == 0) return std::nullopt;
        result.port = default_port;
    } else {
        const auto port = parse_port(port_text);
        if (!port) return std::nullopt;
        result.port = *port;
    }
    return result;
}

std::variant<std::vector<redis_endpoint>, std::string> parse_sentinel_list(std::string_view text) {
    std::vector<redis_endpoint> sentinels;
    if (trim(text).empty()) return std::string("the sentinel list is empty; give host:port,host:port,...");
    while (true) {
        const auto comma = text.find(',');
        const auto entry = trim(text.substr(0, comma));
        if (entry.empty()) return std::string("the sentinel list has an empty entry; give host:port,host:port,...");
        auto endpoint = redis_endpoint::parse_host_port(entry, 26379);
        if (!endpoint) {
            return "sentinel address '" + std::string(entry) +
                   "' is not host:port (IPv6 in brackets: [::1]:26379)";
        }
        for (const auto& known : sentinels) {
            if (known == *endpoint) return "sentinel address '" + std::string(entry) + "' is listed twice";
        }
        sentinels.push_back(std::move(*endpoint));
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return sentinels;
}

}  // namespace voice_broker
