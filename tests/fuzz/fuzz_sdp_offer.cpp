// Fuzzes SDP offer validation: POST /api/session?action=connect in relay mode, where the server
// relays the browser's offer to OpenAI.  Today the check is "Content-Type application/sdp and a
// body that starts with v=0"; a stricter validator belongs behind the same call.
//
// Input: line 1 is the Content-Type, the rest the body; byte 0 of line 1 being '!' sends no
// ticket.
// Properties: an offer is relayed (upstream work carrying the body unchanged, for the holder's
// ticket) only with an SDP Content-Type and an SDP body; anything else is a JSON 400/415, and
// relaying never happens without a ticket.  A fourth relay in one session is refused (429).
#include "session_api_harness.hpp"

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

api_harness& harness() {
    static api_harness h(realtime_mode::relay);
    return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& h = harness();
    h.reset();
    h.call(api_harness::request("POST", "/api/session?action=join"));  // tk1 holds the slot

    const auto fields = split(as_text(data, size), "\n", 2);
    std::string content_type(field(fields, 0));
    const bool no_ticket = !content_type.empty() && content_type.front() == '!';
    std::vector<std::pair<std::string, std::string>> headers{{"content-type", content_type}};
    if (!no_ticket) headers.emplace_back("x-session-ticket", fuzz_ticket(1));
    const auto req = api_harness::request("POST", "/api/session?action=connect", headers, std::string(field(fields, 1)));

    const auto out = h.call(req);
    check_api_answer(req, out);
    const bool sdp = content_type.rfind("application/sdp", 0) == 0 && req.body.rfind("v=0", 0) == 0;
    FUZZ_CHECK(out.upstream.has_value() == (sdp && !no_ticket), content_type + "\n" + req.body);
    if (!out.upstream) {
        FUZZ_CHECK(out.response.status == 400 || out.response.status == 415, std::to_string(out.response.status));
        return 0;
    }
    // Three relays per session at most (one per page load of the holder).
    h.call(req);
    h.call(req);
    const auto fourth = h.call(req);
    check_api_answer(req, fourth);
    FUZZ_CHECK(!fourth.upstream && fourth.response.status == 429, fourth.response.body);
    return 0;
}
