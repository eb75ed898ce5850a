// request_framing: the RFC 9112 rules a request head must meet before its body can be read or
// it can be answered at all.  A request that breaks one is answered 400 and its connection
// closed, because where the next request starts can no longer be known.  No I/O: the HTTP
// session asks once the head has been read.
#pragma once

#include <optional>
#include <string_view>

namespace voice_broker {

struct request_head_facts {
    unsigned version = 11;             // 10 or 11
    std::size_t host_fields = 0;       // how many Host fields
    std::string_view transfer_encoding;  // the Transfer-Encoding value(s), comma-joined; empty: none
    bool has_content_length = false;
};

// Why the head cannot be accepted (a short reason for the answer), or nullopt.
std::optional<std::string_view> framing_problem(const request_head_facts& head);

// The origin-form of an absolute-form target ("http://host:80/a?b" -> "/a?b"), which a server
// must accept (RFC 9112 3.2.2); any other target as it is.
std::string_view origin_form(std::string_view target);

}  // namespace voice_broker
