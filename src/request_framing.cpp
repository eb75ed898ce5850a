#include "voice_broker/request_framing.hpp"

#include "voice_broker/ascii.hpp"
#include "voice_broker/http_message.hpp"

namespace voice_broker {

std::optional<std::string_view> framing_problem(const request_head_facts& head) {
    // RFC 9112 3.2: a client must send exactly one Host in HTTP/1.1; more than one is never valid.
    if (head.host_fields > 1) return "more than one Host header";
    if (head.version >= 11 && head.host_fields == 0) return "no Host header";
    if (!head.content_length_plain) return "a Content-Length that is not one decimal number";
    if (head.transfer_encoding_fields == 0 && head.transfer_encoding.empty()) return std::nullopt;
    // RFC 9112 6.3: a request whose last transfer coding is not chunked has no knowable length;
    // with Content-Length as well, it may be a smuggling attempt (6.1).
    std::string_view last;
    for_each_list_item(head.transfer_encoding, ',', [&](std::string_view coding) {
        if (!coding.empty()) last = coding;
    });
    if (!last.empty() && !iequals_ascii(last, "chunked")) return "a Transfer-Encoding that does not end in chunked";
    // The list may end in chunked and still not be read so (a transfer-parameter, a byte that is
    // not a token), or names no coding at all: the parser's verdict decides how the body is read, so a
    // Transfer-Encoding it did not read as chunked is refused rather than served as no body.
    if (last.empty() || !head.read_as_chunked) return "a Transfer-Encoding this server cannot read";
    if (head.has_content_length) return "both Transfer-Encoding and Content-Length";
    return std::nullopt;
}

std::string_view origin_form(std::string_view target) {
    std::size_t scheme_end = 0;
    if (target.size() > 7 && iequals_ascii(target.substr(0, 7), "http://")) scheme_end = 7;
    else if (target.size() > 8 && iequals_ascii(target.substr(0, 8), "https://")) scheme_end = 8;
    else return target;
    const auto path = target.find_first_of("/?", scheme_end);
    if (path == std::string_view::npos) return "/";
    if (target[path] == '?') return target.substr(path);  // "http://host?x": the query of "/"; the router refuses it
    return target.substr(path);
}

}  // namespace voice_broker
