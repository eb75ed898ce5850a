// upstream_url: OPENAI_BASE_URL taken apart for a connection of our own (the sideband's
// WebSocket): scheme, host (an IPv6 literal without its brackets), port, base path, and the
// Host header and CONNECT authority made from them.  No credentials in the URL.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace voice_broker {

struct upstream_target {
    bool tls = true;
    std::string host;       // without brackets
    std::string port;       // "443"
    std::string base_path;  // "" or "/prefix", without a trailing slash
    bool host_is_ip = false;

    std::string authority() const {  // host[:port] for Host and CONNECT
        const auto h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        return h + ":" + port;
    }
    std::string host_header() const {
        const auto h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        const bool default_port = (tls && port == "443") || (!tls && port == "80");
        return default_port ? h : h + ":" + port;
    }
};

// Nothing when the URL is not http(s)://host[:port][/path] with a numeric port.
std::optional<upstream_target> parse_base_url(std::string_view url);

}  // namespace voice_broker
