// Fuzzes an HTTP/1.1 connection's requests end to end, without sockets: the bytes go through
// Beast's request_parser with the server's limits (a fresh parser per request, as http_session
// does, pipelined requests included), each request becomes the router's http_request (header
// names lower-cased, target split at '?'), and is answered by the session API (handle_session_api
// over a real session_broker) for /api/session, or by the router (static files, health,
// metrics, the live-channel path, unknown /api paths) for the rest.  Time moves one second per
// request and the broker acts on its deadlines.
//
// Seeds name the deterministic tickets (tk1_fuzzticket000000, ...) in cookies, headers and
// query strings.  Properties: check_api_answer for every answer; a malformed request, a header
// block over MAX_HEADER_BYTES or a body over MAX_BODY_BYTES ends the connection.
//
// Written against the API before the clarity refactor (issue 11): http_session's conversion is
// copied here (it is private to http_session.cpp); when the router owns that step, call it.
#include "session_api_harness.hpp"

#include "voice_broker/metrics.hpp"
#include "voice_broker/net.hpp"
#include "voice_broker/router.hpp"
#include "voice_broker/static_files.hpp"

#include <boost/beast/websocket/rfc6455.hpp>

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

struct world {
    scratch_dir dir;
    api_harness api{realtime_mode::token};
    metrics stats;
    std::shared_ptr<router> routes;

    world() {
        dir.write("index.html", "<!doctype html><title>voice</title>" + std::string(300, ' '));
        dir.write("app.js", "export const x = 1;" + std::string(300, ' '));
        // The session service is not needed: /api/session is answered by the session API here.
        routes = std::make_shared<router>(nullptr, stats, static_files::load(dir.path().string()));
    }
};

world& the_world() {
    static world w;
    return w;
}

http_response route(const http_request& req) {
    std::optional<http_response> answer;
    int calls = 0;
    the_world().routes->handle(req, [&](http_response res) {
        ++calls;
        answer = std::move(res);
    });
    FUZZ_CHECK(calls == 1, req.target);  // exactly once, and synchronously for these paths
    return std::move(*answer);
}

// As http_session::on_request builds it.
http_request to_request(http::request<http::string_body>& msg) {
    http_request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    const auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& f : msg) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    req.client_address = "203.0.113.7";
    req.request_id = "fuzz";
    return req;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    the_world();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& w = the_world();
    w.api.reset();
    const config defaults;
    net::const_buffer rest(data, size);

    for (int requests = 0; rest.size() > 0 && requests < 32; ++requests) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(defaults.limits.max_header_bytes));
        parser.body_limit(defaults.limits.max_body_bytes);
        parser.eager(true);
        error_code ec;
        while (rest.size() > 0 && !parser.is_done()) {
            const auto used = parser.put(rest, ec);
            rest += used;
            if (ec == http::error::need_more) {
                ec = {};
                break;
            }
            if (ec) break;
        }
        if (ec || !parser.is_done()) break;  // the connection answers 400/413/431, or waits, and closes

        auto& msg = parser.get();
        if (beast::websocket::is_upgrade(msg)) continue;  // handed to the WebSocket (fuzz_websocket_message)
        const auto req = to_request(msg);
        if (req.target.empty() || req.target.front() != '/') break;  // 400 bad_target, then close

        if (req.path == "/api/session") {
            check_api_answer(req, w.api.call(req));
        } else {
            const auto res = route(req);
            if (res.status != 200 && res.status != 304) check_api_answer(req, {res, std::nullopt});
        }
        if (!msg.keep_alive()) break;
        w.api.advance(std::chrono::seconds{1});
    }
    return 0;
}
