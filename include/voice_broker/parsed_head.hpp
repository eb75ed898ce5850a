// parsed_head: the request_head_facts of a head Beast's parser has read, for framing_problem.
// One definition for the HTTP session and the fuzz targets that stand in for it, so what is
// checked is what the server checks.
#pragma once

#include "voice_broker/net.hpp"
#include "voice_broker/request_framing.hpp"

namespace voice_broker {

// Call once the parser's head is done.
inline request_head_facts head_facts(const http::request_parser<http::string_body>& parser) {
    const auto& msg = parser.get();
    request_head_facts facts;
    facts.version = msg.version();
    facts.host_fields = msg.count(http::field::host);
    for (const auto& f : msg) {
        if (f.name() != http::field::transfer_encoding) continue;
        if (facts.transfer_encoding_fields++ > 0) facts.transfer_encoding += ", ";
        facts.transfer_encoding += f.value();
    }
    facts.read_as_chunked = parser.chunked();
    facts.has_content_length = msg.count(http::field::content_length) > 0;
    for (const auto& f : msg) {
        if (f.name() != http::field::content_length) continue;
        const auto v = f.value();
        if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos) facts.content_length_plain = false;
    }
    return facts;
}

}  // namespace voice_broker
