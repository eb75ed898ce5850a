// Fuzzes the RFC 9112 framing rules that decide whether a request head may be read on
// (request_framing: framing_problem, origin_form), against Beast's parser, which decides how the
// body is actually read.  Request smuggling lives in the gap between the two: a head that
// framing_problem lets through must be framed by Beast exactly as RFC 9112 says, or the bytes
// that follow would be read as another request.
//
// Input, two forms:
// - raw request bytes (a head, perhaps a body), read as http_session reads them: Beast's
//   request_parser with the server's limits, framing_problem once the head is done.  When the
//   head is let through: HTTP/1.1 carries exactly one Host (1.0 at most one); no
//   Transfer-Encoding together with Content-Length; with a Transfer-Encoding field (an empty one
//   too), the list of every such field ends in "chunked" and Beast reads the body as chunked; without one,
//   the body is exactly Content-Length bytes (none without it).  And origin_form() of the target
//   (below).
// - "!" VERSION HOSTS CL [FIELDS [CHUNKED]] "\n" TE "\n" TARGET: the facts given directly
//   (VERSION '0' is 1.0, else 1.1; HOSTS a digit; CL '1' for a Content-Length; FIELDS a digit,
//   the Transfer-Encoding fields; CHUNKED '1' when the parser read the body as chunked),
//   checked against a plain reading of RFC 9112 3.2 and 6.3; and origin_form(TARGET).
// origin_form: a target that is not absolute-form comes back unchanged; an absolute-form one as
// its path and query (a suffix of it, or "/"), idempotent, the authority holding no '/' or '?'.
#include "fuzz_support.hpp"

#include "voice_broker/ascii.hpp"
#include "voice_broker/config.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/net.hpp"
#include "voice_broker/parsed_head.hpp"
#include "voice_broker/request_framing.hpp"

#include <charconv>

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The last coding of a Transfer-Encoding list (RFC 9110 5.6.1: empty items are ignored).
std::string_view last_coding(std::string_view list) {
    std::string_view last;
    while (!list.empty()) {
        const auto comma = list.find(',');
        const auto item = trim_ows(list.substr(0, comma));
        if (!item.empty()) last = item;
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return last;
}

void check_origin_form(std::string_view target) {
    const auto out = origin_form(target);
    const std::string where = "origin_form(" + std::string(target) + ") = " + std::string(out);
    std::size_t scheme = 0;
    if (target.size() > 7 && iequals_ascii(target.substr(0, 7), "http://")) scheme = 7;
    if (target.size() > 8 && iequals_ascii(target.substr(0, 8), "https://")) scheme = 8;
    if (scheme == 0) {
        FUZZ_CHECK(out == target && out.data() == target.data(), where);
        return;
    }
    FUZZ_CHECK(!out.empty() && (out.front() == '/' || out.front() == '?'), where);
    FUZZ_CHECK(origin_form(out) == out, where);  // idempotent
    const auto at = target.find_first_of("/?", scheme);
    if (at == std::string_view::npos) {
        FUZZ_CHECK(out == "/", where);  // "http://host": the root
    } else {
        // The path and query: the target's suffix from the first '/' or '?' after the authority.
        FUZZ_CHECK(out.data() == target.data() + at && out.size() == target.size() - at, where);
    }
}

void check_facts(std::string_view input) {
    const auto lines = split(input.substr(1), "\n", 3);
    const auto flags = field(lines, 0);
    request_head_facts facts;
    facts.version = flags.size() > 0 && flags[0] == '0' ? 10 : 11;
    facts.host_fields = flags.size() > 1 && flags[1] >= '0' && flags[1] <= '9' ? static_cast<std::size_t>(flags[1] - '0') : 1;
    facts.has_content_length = flags.size() > 2 && flags[2] == '1';
    facts.transfer_encoding = field(lines, 1);
    const auto te = field(lines, 1);
    // FIELDS: how many Transfer-Encoding fields (by default one if TE is not empty); CHUNKED:
    // whether the parser read the body as chunked (by default, whether TE ends in chunked).
    facts.transfer_encoding_fields = flags.size() > 3 && flags[3] >= '0' && flags[3] <= '9' ? static_cast<std::size_t>(flags[3] - '0')
                                                                                        : (te.empty() ? 0 : 1);
    facts.read_as_chunked = flags.size() > 4 ? flags[4] == '1' : iequals_ascii(last_coding(te), "chunked");
    const auto problem = framing_problem(facts);

    // RFC 9112 3.2: exactly one Host in 1.1, never more than one.  6.1/6.3: a Transfer-Encoding
    // must end in chunked, and never comes with Content-Length.
    const bool host_ok = facts.host_fields <= 1 && (facts.version < 11 || facts.host_fields == 1);
    // And 6.3 as this server reads it: a Transfer-Encoding field is let through only if the
    // parser reads the body as chunked (else the body would be read as the next request).
    const bool no_te = te.empty() && facts.transfer_encoding_fields == 0;
    const bool te_ok = no_te || (iequals_ascii(last_coding(te), "chunked") && facts.read_as_chunked && !facts.has_content_length);
    const std::string where = std::string(input) + (problem ? " -> " + std::string(*problem) : " -> ok");
    // Sound: nothing RFC 9112 forbids gets through.  (Stricter is allowed: a coding written
    // with a tab around it is refused, never misread.)
    if (!problem) FUZZ_CHECK(host_ok && te_ok, where);
    // And nothing valid is refused but for that whitespace.
    const bool tab_in_te = te.find('\t') != std::string_view::npos;
    if (problem && !tab_in_te) FUZZ_CHECK(!(host_ok && te_ok), where);
    if (problem) FUZZ_CHECK(!problem->empty() && problem->find_first_of("\r\n") == std::string_view::npos, where);
    check_origin_form(field(lines, 2));
}

void check_request(std::string_view bytes) {
    const config defaults;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(defaults.limits.max_header_bytes));
    parser.body_limit(defaults.limits.max_body_bytes);
    parser.eager(true);
    error_code ec;
    bool checked = false;
    while (!bytes.empty() && !parser.is_done()) {
        const auto used = parser.put(net::buffer(bytes.data(), bytes.size()), ec);
        bytes.remove_prefix(used);
        if (ec) break;
        if (!parser.is_header_done() || checked) continue;
        checked = true;
        const auto& msg = parser.get();
        if (framing_problem(head_facts(parser))) return;  // 400, and the connection closes

        std::string where = std::string(msg.method_string()) + " " + std::string(msg.target()) + " HTTP/" +
                            std::to_string(msg.version() / 10) + "." + std::to_string(msg.version() % 10);
        std::string te_all;  // every Transfer-Encoding field, as one list
        std::size_t te_fields = 0;
        for (const auto& f : msg) {
            where += "\n" + std::string(f.name_string()) + ": " + std::string(f.value());
            if (f.name() == http::field::transfer_encoding) {
                te_all += (te_fields++ ? ", " : "") + std::string(f.value());
            }
        }
        const auto hosts = msg.count(http::field::host);
        FUZZ_CHECK(hosts <= 1 && (msg.version() < 11 || hosts == 1), where);
        // Any Transfer-Encoding field let through (an empty one too) must be one Beast reads as
        // chunked, or the body would be read as the next request (the transfer-encoding-mismatch
        // finding: "gzip;q=1, chunked", "gzi\xe1p, chunked", an empty field before "gzip").
        if (te_fields > 0) {
            FUZZ_CHECK(msg.count(http::field::content_length) == 0, where);
            FUZZ_CHECK(iequals_ascii(last_coding(te_all), "chunked"), "Transfer-Encoding not ending in chunked let through\n" + where);
            FUZZ_CHECK(parser.chunked(), "framing_problem says chunked, Beast does not read it so\n" + where);
        } else {
            FUZZ_CHECK(!parser.chunked(), where);
        }
        check_origin_form(msg.target());
    }
    if (ec || !parser.is_done() || !checked) return;
    const auto& msg = parser.get();
    if (parser.chunked()) return;
    // No Transfer-Encoding: the body is exactly what Content-Length says (every field agreeing).
    std::uint64_t length = 0;
    bool first = true;
    for (const auto& f : msg) {
        if (f.name() != http::field::content_length) continue;
        std::uint64_t v = 0;
        const auto value = f.value();
        const auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), v);
        FUZZ_CHECK(err == std::errc{} && end == value.data() + value.size(), "Content-Length: " + std::string(value));
        FUZZ_CHECK(first || v == length, "Content-Lengths that disagree were accepted");
        length = v;
        first = false;
    }
    FUZZ_CHECK(msg.body().size() == length, "body of " + std::to_string(msg.body().size()) + " bytes, Content-Length " + std::to_string(length));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = as_text(data, size);
    if (!input.empty() && input.front() == '!') check_facts(input);
    else check_request(input);
    return 0;
}
