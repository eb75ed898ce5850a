#include "upstream_url.hpp"

#include "voice_broker/ip_network.hpp"

namespace voice_broker {

std::optional<upstream_target> parse_base_url(std::string_view url) {
    upstream_target t;
    if (url.rfind("https://", 0) == 0) {
        t.tls = true;
        url.remove_prefix(8);
        t.port = "443";
    } else if (url.rfind("http://", 0) == 0) {
        t.tls = false;
        url.remove_prefix(7);
        t.port = "80";
    } else {
        return std::nullopt;
    }
    const auto slash = url.find('/');
    auto authority = url.substr(0, slash);
    if (slash != std::string_view::npos) t.base_path = std::string(url.substr(slash));
    while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
    if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no credentials in the URL
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        t.host = std::string(authority.substr(1, close - 1));
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return std::nullopt;
            t.port = std::string(authority.substr(close + 2));
        }
    } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        t.host = std::string(authority.substr(0, colon));
        t.port = std::string(authority.substr(colon + 1));
    } else {
        t.host = std::string(authority);
    }
    if (t.host.empty() || t.port.empty() || t.port.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    t.host_is_ip = parse_ip(t.host).has_value();
    return t;
}

}  // namespace voice_broker
