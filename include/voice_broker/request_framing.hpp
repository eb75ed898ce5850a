// request_framing: the RFC 9112 rules a request head must meet before its body can be read or
// it can be answered at all.  A request that breaks one is answered 400 and its connection
// closed, because where the next request starts can no longer be known.  No I/O: the HTTP
// session asks once the head has been read (parsed_head.hpp gathers the facts from Beast).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace voice_broker {

struct request_head_facts {
    unsigned version = 11;           // 10 or 11
    std::size_t host_fields = 0;     // how many Host fields
    std::string transfer_encoding;   // every Transfer-Encoding field's value, comma-joined; empty: none
    std::size_t transfer_encoding_fields = 0;  // how many Transfer-Encoding fields, empty ones too
    // The parser's own verdict: it reads the body as chunked.  Beast sets this only when
    // "chunked" is the last item of a list it could read (a transfer-parameter or a byte that is
    // not a token stops its reading early), so a Transfer-Encoding it did not read as chunked
    // would leave the body to be read as the next request.
    bool read_as_chunked = false;
    bool has_content_length = false;
    // Every Content-Length field is one decimal number.  Beast also takes a list of equal values
    // ("0,0"), which RFC 9110 8.6 lets a server refuse; nginx does, and so does this server: a
    // proxy in front may read such a field otherwise (request smuggling).
    bool content_length_plain = true;
};

// Why the head cannot be accepted (a short reason for the answer), or nullopt.
std::optional<std::string_view> framing_problem(const request_head_facts& head);

// The origin-form of an absolute-form target ("http://host:80/a?b" -> "/a?b"), which a server
// must accept (RFC 9112 3.2.2); any other target as it is.
std::string_view origin_form(std::string_view target);

}  // namespace voice_broker
