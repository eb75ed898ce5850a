// Fuzzes the JSON body of POST /api/session?action=call (the page registers the call it opened
// with its key, so that the server can hang it up when the session ends), through the whole
// request path of session_api_harness.hpp (parser, router, session service, memory store).
//
// Input: byte 0 picks who asks (the slot holder by header or by cookie, a queued visitor, an
// unknown ticket, nobody); the rest is the body.  The same request is sent twice.
// Properties: 200 {"ok":true} exactly when the holder sent an object whose "callId" is a string
// of 1..128 letters, digits, '_' or '-'; both answers are the same; when the holder leaves, that
// call id (once) is what is hung up, and nothing otherwise.
#include "session_api_harness.hpp"

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

api_world& the_world() {
    static api_world w(realtime_mode::token);
    return w;
}

bool valid_call_id(const nlohmann::json& body) {
    if (!body.is_object() || !body.contains("callId") || !body["callId"].is_string()) return false;
    // An OpenAI Realtime call id: "rtc_" and at least one of [A-Za-z0-9_-], at most 128 in all.
    const auto id = body["callId"].get<std::string>();
    if (id.size() <= 4 || id.size() > 128 || id.compare(0, 4, "rtc_") != 0) return false;
    for (char c : id.substr(4)) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    the_world();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    auto& w = the_world();
    w.reset();
    FUZZ_CHECK(w.post("join").status == 200, "join");  // tk1: the slot holder
    FUZZ_CHECK(w.post("join").status == 200, "join");  // tk2: queued

    const int who = data[0] % 5;
    std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/json"}};
    if (who == 0) headers.emplace_back("X-Session-Ticket", fuzz_ticket(1));
    if (who == 1) headers.emplace_back("Cookie", "theme=dark; vb_ticket=" + fuzz_ticket(1));
    if (who == 2) headers.emplace_back("X-Session-Ticket", fuzz_ticket(2));
    if (who == 3) headers.emplace_back("X-Session-Ticket", fuzz_ticket(99));
    const std::string body(as_text(data + 1, size - 1));

    const auto first = w.post("call", headers, body);
    const auto second = w.post("call", headers, body);
    FUZZ_CHECK(first.status == second.status && first.body == second.body, body + "\n-> " + first.body + "\n-> " + second.body);

    const auto parsed = nlohmann::json::parse(body, nullptr, false);
    const bool holder = who <= 1;
    const bool too_large = body.size() > w.settings().limits.max_body_bytes;
    const bool accepted = holder && !too_large && !parsed.is_discarded() && valid_call_id(parsed);
    FUZZ_CHECK((first.status == 200) == accepted, body + "\n-> " + first.body);
    if (too_large) FUZZ_CHECK(first.status == 413, first.body);

    FUZZ_CHECK(w.post("leave", {{"X-Session-Ticket", fuzz_ticket(1)}}).status == 200, "leave");
    const auto& hung = w.upstream().hangups;
    if (accepted) {
        FUZZ_CHECK(hung.size() == 1 && hung.front() == parsed["callId"].get<std::string>(), body);
    } else {
        FUZZ_CHECK(hung.empty(), body);
    }
    w.stop();
    return 0;
}
