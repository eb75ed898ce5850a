#include "voice_broker/client_identity.hpp"

#include <algorithm>

namespace voice_broker {

bool is_trusted_proxy(const std::vector<ip_network>& trusted, std::string_view address) {
    return std::any_of(trusted.begin(), trusted.end(), [&](const ip_network& n) { return n.contains(address); });
}

client_identity identify_client(const std::vector<ip_network>& trusted, const http_request& req) {
    client_identity id{req.peer_address, req.over_tls};
    if (!is_trusted_proxy(trusted, req.peer_address)) return id;
    // Walk X-Forwarded-For from the right: every trusted hop vouches for the one before it.
    std::string_view rest = req.header("x-forwarded-for");
    while (!rest.empty()) {
        const auto comma = rest.rfind(',');
        auto item = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (!parse_ip(item)) break;
        id.address = std::string(item);
        if (!is_trusted_proxy(trusted, id.address)) break;
    }
    const auto proto = req.header("x-forwarded-proto");
    if (proto == "https") id.secure = true;
    else if (proto == "http") id.secure = req.over_tls;
    return id;
}

bool origin_allowed(const std::vector<ip_network>& trusted, const http_request& req) {
    const auto origin = req.header("origin");
    if (origin.empty()) return true;
    const auto scheme_end = origin.find("://");
    const auto origin_host = scheme_end == std::string_view::npos ? origin : origin.substr(scheme_end + 3);
    if (origin_host == req.header("host")) return true;
    return is_trusted_proxy(trusted, req.peer_address) && !origin_host.empty() && origin_host == req.header("x-forwarded-host");
}

}  // namespace voice_broker
