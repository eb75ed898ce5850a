// client_identity: who the client really is.  Behind a trusted proxy (TRUSTED_PROXIES) that is
// the right-most untrusted X-Forwarded-For address and the proxy's X-Forwarded-Proto; otherwise
// the socket's own peer and transport.  No I/O.
#pragma once

#include "voice_broker/http_message.hpp"
#include "voice_broker/ip_network.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace voice_broker {

struct client_identity {
    std::string address;
    bool secure = false;  // https, directly or through a trusted proxy
};

bool is_trusted_proxy(const std::vector<ip_network>& trusted, std::string_view address);

// `req.peer_address` and `req.over_tls` are the socket's; the forwarded headers count only when
// the peer is trusted.
client_identity identify_client(const std::vector<ip_network>& trusted, const http_request& req);

// Whether the request's Origin names this server: its Host, or, from a trusted proxy, its
// X-Forwarded-Host.  No Origin (not a browser page) counts as allowed; callers that need a page
// to prove where it comes from check for the header themselves.
bool origin_allowed(const std::vector<ip_network>& trusted, const http_request& req);

}  // namespace voice_broker
