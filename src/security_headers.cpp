#include "voice_broker/security_headers.hpp"

namespace voice_broker {

std::string origin_of(const std::string& url) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    const auto path = url.find('/', scheme + 3);
    return path == std::string::npos ? url : url.substr(0, path);
}

security_headers::security_headers(const std::string& upstream_base_url) {
    // Exactly what the page needs: its own scripts and styles, the live channel (same origin;
    // 'self' covers ws: and wss: of this host), the OpenAI origin for the WebRTC SDP exchange,
    // and media from the microphone and the remote stream.
    csp_ = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "font-src 'self'; media-src 'self' blob: mediastream:; connect-src 'self' " +
           origin_of(upstream_base_url) +
           "; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
           "object-src 'none'";
    for (const bool https : {false, true}) {
        http_response probe;
        apply(probe, https);
        auto& out = https ? https_lines_ : plain_lines_;
        out = "Server: voice-broker\r\n";
        for (const auto& [name, value] : probe.headers) out += name + ": " + value + "\r\n";
        // A JSON answer is never rendered as a page: it needs only what keeps it from being one
        // (OWASP's REST Security Cheat Sheet), not the page's script, media and feature policy.
        // That is 400 bytes less on every API answer, which clients poll.
        auto& api = https ? https_api_lines_ : plain_api_lines_;
        api = "Server: voice-broker\r\n"
              "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
              "X-Content-Type-Options: nosniff\r\n"
              "X-Frame-Options: DENY\r\n";
        if (https) api += "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n";
    }
}

std::string_view security_headers::lines_for(const http_response& res, bool https) const {
    const bool api = !res.prepared_head && res.header("Content-Type").starts_with("application/json");
    if (api) return https ? https_api_lines_ : plain_api_lines_;
    return https ? https_lines_ : plain_lines_;
}

void security_headers::apply(http_response& res, bool https) const {
    res.set_header("Content-Security-Policy", csp_);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Permissions-Policy", "microphone=(self), camera=(), geolocation=(), payment=(), usb=()");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Cross-Origin-Opener-Policy", "same-origin");
    if (https) res.set_header("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
}

}  // namespace voice_broker
