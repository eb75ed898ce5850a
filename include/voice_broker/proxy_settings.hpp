// proxy_settings: the HTTP proxy the host asks outgoing connections to use (HTTPS_PROXY /
// https_proxy for TLS, http_proxy for plain, NO_PROXY / no_proxy for exceptions), read the way
// libcurl reads them, so that the sideband goes where the API requests go.  No I/O: the
// sideband client tunnels through the proxy with HTTP CONNECT.
//
// Supported: http:// proxies (or a bare host:port), with optional user:password (sent as Basic
// Proxy-Authorization).  NO_PROXY: "*", host names (a suffix match on dot boundaries, a leading
// dot allowed), IP addresses and CIDR blocks.  Not supported (reported by problem()): https://
// and socks proxies.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace voice_broker {

struct proxy_endpoint {
    std::string host;
    std::uint16_t port = 1080;  // libcurl's default proxy port
    std::string authorization;  // "Basic ..." or empty; a secret, never logged
};

class proxy_settings {
public:
    using getenv_fn = std::function<std::optional<std::string>(const std::string&)>;

    // Lower-case names first, as libcurl does; HTTP_PROXY (upper case) is ignored on purpose
    // (CGI's httpoxy: a request header could set it).
    static proxy_settings from_environment(const getenv_fn& getenv);
    static proxy_settings none() { return {}; }
    static proxy_settings from_values(std::string https_proxy, std::string http_proxy, std::string no_proxy);

    // The proxy for a connection to `host` (wss when `tls`); nullopt: connect directly.
    std::optional<proxy_endpoint> for_target(bool tls, std::string_view host) const;
    // Why a configured proxy cannot be used (unsupported scheme, no host), or nothing.  The
    // sideband then fails with this message instead of silently going around the proxy.
    std::optional<std::string> problem(bool tls) const;

    bool bypassed(std::string_view host) const;

private:
    std::string https_proxy_;
    std::string http_proxy_;
    std::string no_proxy_;
};

}  // namespace voice_broker
