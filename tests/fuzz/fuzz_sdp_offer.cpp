// Fuzzes SDP offer validation: POST /api/session?action=connect in relay mode, where the server
// relays the browser's offer to OpenAI, through the whole request path of
// session_api_harness.hpp (parser, router, session service, memory store, recording upstream).
// Today the check is "Content-Type application/sdp and a body that starts with v=0"; a stricter
// validator belongs behind the same call.
//
// Input: line 1 is the Content-Type, the rest the body; byte 0 of line 1 being '!' sends no
// ticket.
// Properties: an offer is relayed (unchanged, answered 201 with the upstream's SDP) exactly when
// the Content-Type as read starts with application/sdp, the body with v=0, and the holder's
// ticket came with it; anything else is a JSON 400/415 (or the parser's 400/413 for a header it
// cannot read).  A fourth relay in one session is refused (429); at shutdown the relayed calls
// are hung up.
#include "session_api_harness.hpp"

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

api_world& the_world() {
    static api_world w(realtime_mode::relay);
    return w;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    the_world();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& w = the_world();
    w.reset();
    FUZZ_CHECK(w.post("join").status == 200, "join");  // tk1 holds the slot

    const auto fields = split(as_text(data, size), "\n", 2);
    const std::string content_type(field(fields, 0));
    const std::string body(field(fields, 1));
    const bool no_ticket = !content_type.empty() && content_type.front() == '!';
    std::string bytes = "POST /api/session?action=connect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type + "\r\n";
    if (!no_ticket) bytes += "X-Session-Ticket: " + fuzz_ticket(1) + "\r\n";
    bytes += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;

    const auto answers = w.connections(bytes, 1);
    FUZZ_CHECK(answers.size() == 1, bytes);
    const auto& first = answers.front();
    const auto relayed = w.upstream().offers.size();
    if (!first.from_service) {  // the parser refused the head (a CR in the Content-Type...)
        FUZZ_CHECK(relayed == 0 && (first.res.status == 400 || first.res.status == 413), bytes);
        w.stop();
        return 0;
    }
    const auto seen_type = first.req.header("content-type");
    const bool sdp = seen_type.rfind("application/sdp", 0) == 0 && body.rfind("v=0", 0) == 0;
    FUZZ_CHECK((relayed == 1) == (sdp && !no_ticket), bytes + "\n-> " + first.res.body);
    if (relayed == 0) {
        FUZZ_CHECK(first.res.status == 400 || first.res.status == 415, bytes + "\n-> " + first.res.body);
        w.stop();
        return 0;
    }
    FUZZ_CHECK(first.res.status == 201 && w.upstream().offers.front() == body, bytes);
    // Three relays per session at most (one per page load of the holder).
    w.connections(bytes, 1);
    w.connections(bytes, 1);
    const auto fourth = w.connections(bytes, 1);
    FUZZ_CHECK(fourth.size() == 1 && fourth.front().res.status == 429 && w.upstream().offers.size() == 3, fourth.front().res.body);
    w.stop();
    return 0;
}
