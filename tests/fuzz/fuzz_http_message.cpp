// Fuzzes the plain request/response messages: http_request::query_param (percent-decoded, '+'
// as space), http_request::cookie, http_request::header, for_each_list_item, and the response's
// case-insensitive header lookup, also through a prepared head.
//
// Input: lines "query\ncookie header\nsecond cookie header\nname to look up\nprepared head".
// Properties: each is checked against a straightforward reading of its contract (first match
// wins; items trimmed, never holding the separator; a set header reads back under any case).
#include "fuzz_support.hpp"

#include "voice_broker/http_message.hpp"

#include <cctype>
#include <memory>

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

// The first '&'-separated item whose decoded key is `name` and whose value decodes; that value
// ("" with no '=').  A malformed value is skipped (today's rule: "?a=%zz&a=1" reads a=1).
std::optional<std::string> reference_query_param(std::string_view query, std::string_view name) {
    std::optional<std::string> found;
    bool done = false;
    for_each_list_item(query, '&', [&](std::string_view item) {
        FUZZ_CHECK(item.find('&') == std::string_view::npos, std::string(query));
        FUZZ_CHECK(item.empty() || (item.front() != ' ' && item.back() != ' '), std::string(query));
        if (done) return;
        const auto eq = item.find('=');
        const auto key = percent_decode(item.substr(0, eq), true);
        if (!key || *key != name) return;
        found = eq == std::string_view::npos ? std::optional<std::string>{""} : percent_decode(item.substr(eq + 1), true);
        done = found.has_value();
    });
    return found;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string flip_case(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        const auto u = static_cast<unsigned char>(c);
        c = static_cast<char>(std::islower(u) ? std::toupper(u) : std::tolower(u));
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto fields = split(as_text(data, size), "\n", 5);
    http_request req;
    req.query = std::string(field(fields, 0));
    req.headers = {{"cookie", std::string(field(fields, 1))},
                   {"x-other", "a=b"},
                   {"cookie", std::string(field(fields, 2))}};
    const std::string name(field(fields, 3));

    for (const std::string& key : {std::string("action"), std::string("ticket"), name}) {
        const auto got = req.query_param(key);
        const auto want = reference_query_param(req.query, key);
        FUZZ_CHECK(got == want, "query: " + req.query + "\nkey: " + key);
    }

    for (const std::string& key : {std::string("vb_ticket"), name}) {
        const auto got = req.cookie(key);
        if (!got) continue;
        FUZZ_CHECK(got->find(';') == std::string::npos, *got);
        const std::string pair = key + "=" + *got;
        FUZZ_CHECK(req.headers[0].second.find(pair) != std::string::npos || req.headers[2].second.find(pair) != std::string::npos,
                   pair);
    }
    FUZZ_CHECK(req.header("x-other") == "a=b", req.query);

    // Response headers: set, then read back under another case; a prepared head is searched too.
    http_response res;
    if (!name.empty() && name.find(':') == std::string::npos && name.find('\r') == std::string::npos &&
        name.find('\n') == std::string::npos) {
        res.set_header(name, "first");
        res.set_header(flip_case(name), "second");
        FUZZ_CHECK(res.headers.size() == 1 && res.header(lower(name)) == "second", name);
    }
    http_response prepared;
    prepared.prepared_head = std::make_shared<const std::string>(std::string(field(fields, 4)));
    const auto value = prepared.header(name);
    if (!value.empty()) {
        FUZZ_CHECK(value.find("\r\n") == std::string_view::npos && value.front() != ' ', std::string(value));
    }
    return 0;
}
