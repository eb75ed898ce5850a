// Fuzzes the JSON body of POST /api/session?action=call (the browser registers the call id of a
// call it opened, so that the server can hang it up).
//
// Input: byte 0 picks who asks (the slot holder by header or cookie, a queued visitor, an unknown
// ticket, nobody); the rest is the body.  The same body is sent twice.
// Properties: 200 {"ok":true} exactly when the holder sent an object whose "callId" is a string
// of 1..128 letters, digits, '_' or '-', and then that id (once) is what the registry holds;
// otherwise a JSON error and nothing registered.  Both answers are the same.
#include "session_api_harness.hpp"

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

api_harness& harness() {
    static api_harness h(realtime_mode::token);
    return h;
}

bool valid_call_id(const nlohmann::json& body) {
    if (!body.is_object() || !body.contains("callId") || !body["callId"].is_string()) return false;
    const auto id = body["callId"].get<std::string>();
    if (id.empty() || id.size() > 128) return false;
    for (char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    auto& h = harness();
    h.reset();
    const auto join = api_harness::request("POST", "/api/session?action=join");
    h.call(join);  // tk1: the slot holder
    h.call(join);  // tk2: queued

    const int who = data[0] % 5;
    std::vector<std::pair<std::string, std::string>> headers{{"content-type", "application/json"}};
    if (who == 0) headers.emplace_back("x-session-ticket", fuzz_ticket(1));
    if (who == 1) headers.emplace_back("cookie", "theme=dark; vb_ticket=" + fuzz_ticket(1));
    if (who == 2) headers.emplace_back("x-session-ticket", fuzz_ticket(2));
    if (who == 3) headers.emplace_back("x-session-ticket", fuzz_ticket(99));
    const std::string body(as_text(data + 1, size - 1));
    const auto req = api_harness::request("POST", "/api/session?action=call", headers, body);

    const auto first = h.call(req);
    check_api_answer(req, first);
    const auto second = h.call(req);
    check_api_answer(req, second);
    FUZZ_CHECK(first.response.status == second.response.status && first.response.body == second.response.body, body);

    const auto parsed = nlohmann::json::parse(body, nullptr, false);
    const bool holder = who <= 1;
    const bool accepted = holder && !parsed.is_discarded() && valid_call_id(parsed);
    FUZZ_CHECK((first.response.status == 200) == accepted, body + "\n-> " + first.response.body);
    const auto registered = h.calls().find(fuzz_ticket(1));
    if (accepted) {
        FUZZ_CHECK(registered != h.calls().end() && registered->second.size() == 1 &&
                       registered->second.front() == parsed["callId"].get<std::string>(),
                   body);
    } else {
        FUZZ_CHECK(h.calls().empty() || (registered != h.calls().end() && registered->second.empty()), body);
    }
    return 0;
}
