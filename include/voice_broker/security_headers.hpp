// security_headers: the headers every response carries, set in this one place.
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

    // The same headers (and Server), rendered once as header lines for the response writer.
    std::string_view lines(bool https) const { return https ? https_lines_ : plain_lines_; }


private:
    std::string csp_;
    std::string plain_lines_, https_lines_;
};

// "https://api.openai.com/v1/x" -> "https://api.openai.com"
std::string origin_of(const std::string& url);

}  // namespace voice_broker
