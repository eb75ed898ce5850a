// response_head: writes an answer's status line and header block as bytes, the one place where
// an http_response becomes HTTP/1.1.  Beast-free and allocation-free once `out` has capacity:
// the session keeps one `out` per connection and reuses it for every answer.
#pragma once

#include "voice_broker/http_message.hpp"

#include <string>
#include <string_view>

namespace voice_broker {

struct head_options {
    std::string_view fixed_lines;  // rendered once per server: Server and the security headers
    std::string_view request_id;
    bool keep_alive = true;
    unsigned version = 11;  // the request's: HTTP/1.0 keep-alive must be said explicitly
};

// Appends the status line, Date, `options.fixed_lines`, the prepared and dynamic headers,
// Content-Length (unless 204/304), X-Request-Id, Connection when needed, and the blank line.
// Header values containing CR or LF are dropped, never written.
void write_response_head(std::string& out, const http_response& res, std::size_t body_size, const head_options& options);

std::string_view reason_phrase(unsigned status);

// "Date: Tue, 24 Nov 2026 06:30:00 GMT\r\n", formatted at most once a second per thread.
std::string_view date_line();

}  // namespace voice_broker
