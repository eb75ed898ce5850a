// Fuzzes HTTP/1.1 connections end to end, without sockets: raw bytes (pipelined requests, one
// connection after another) through Beast's request_parser with the server's limits and the
// RFC 9112 framing rules, router::route(), and the session service over a memory store for
// /api/session; live-channel upgrades open a channel on the service.  Time moves one second per
// request, or as the request's X-Fuzz-Advance header says (seconds), and the store acts on its
// deadlines, so that sessions expire, warnings go out and abandoned visitors are dropped.
// Requests come from 127.0.0.1, a trusted proxy: X-Forwarded-For picks the client's address
// (fair use per address).
//
// Seeds name the deterministic tickets (tk1_fuzzticket000000, ...) in cookies, headers and
// query strings, and carry the admin token (fuzz-admin-token-0123456789abcdef) for forceEndAll.
// Properties: session_api_harness.hpp (every answer, push, log line and upstream call), and at
// the end of each input the shutdown's (every channel closed, every recorded call hung up once).
#include "session_api_harness.hpp"

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

api_world& the_world() {
    static api_world w(realtime_mode::token);
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
    w.connections(as_text(data, size));
    w.stop();
    return 0;
}
