// security_headers: the security headers every response carries (pages and JSON answers each
// get their own set), decided in this one place.
#pragma once

#include "voice_broker/http_message.hpp"

#include <string>

namespace voice_broker {

class security_headers {
public:
    // `upstream_origin` is the OpenAI origin the page connects to (connect-src).
    explicit security_headers(const std::string& upstream_base_url);

    // `https`: the visitor reached us over TLS (directly or via a trusted proxy): adds HSTS.
    void apply(http_response& res, bool https) const;

    // The header lines (and Server) the response writer sends with `res`, rendered once: the
    // page's full set, or for a JSON answer the short set that keeps it from being framed,
    // sniffed or run as a document.
    std::string_view lines_for(const http_response& res, bool https) const;

private:
    std::string csp_;
    std::string plain_lines_, https_lines_;
    std::string plain_api_lines_, https_api_lines_;
};

// "https://api.openai.com/v1/x" -> "https://api.openai.com"
std::string origin_of(const std::string& url);

}  // namespace voice_broker
