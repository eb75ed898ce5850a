// The server core over real sockets: static files, headers, limits, TLS, timeouts, shutdown.
#include "test_client.hpp"
#include "test_support.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/certificate.hpp"
#include "voice_broker/realtime_upstream.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <future>
#include <map>
#include <sstream>

using namespace voice_broker;
using namespace voice_broker::testing;

namespace {

// A realtime_upstream that keeps the mint callback until release().
struct held_upstream : realtime_upstream {
    std::promise<void> mint_called;
    std::function<void(http_response)> pending;
    void mint_token(std::chrono::seconds, std::function<void(http_response)> done) override {
        pending = std::move(done);
        mint_called.set_value();
    }
    void relay_offer(std::string, std::function<void(call_result)>) override {}
    void hang_up(std::string) override {}
    void release(http_response r) { std::exchange(pending, nullptr)(std::move(r)); }
};

// The status of GET target on a fresh connection, or 0 when the connection is refused or dropped.
unsigned fetch_or_status(std::uint16_t port, const std::string& target) {
    try {
        return fetch(port, "GET", target).status;
    } catch (const std::exception&) {
        return 0;
    }
}

const std::vector<std::string> security_header_names = {
    "content-security-policy", "x-content-type-options", "referrer-policy", "permissions-policy", "x-frame-options"};

void expect_json_error(const response& r, unsigned status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    const auto doc = r.json();
    ASSERT_TRUE(doc.is_object()) << r.body;
    EXPECT_EQ(doc["error"]["code"], code) << r.body;
    EXPECT_TRUE(doc["error"]["message"].is_string());
}

}  // namespace

TEST(http_server, serves_index_with_security_headers) {
    test_server s;
    const auto r = fetch(s.port(), "GET", "/");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.header("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(r.header("cache-control"), "no-cache");
    EXPECT_NE(r.body.find("Voice broker test page"), std::string::npos);
    for (const auto& h : security_header_names) EXPECT_FALSE(r.header(h).empty()) << h;
    const auto csp = r.header("content-security-policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos);
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
    EXPECT_NE(csp.find("connect-src 'self' https://api.openai.com"), std::string::npos);
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
    EXPECT_NE(csp.find("media-src 'self' blob:"), std::string::npos);
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
    EXPECT_NE(r.header("permissions-policy").find("microphone=(self)"), std::string::npos);
    EXPECT_TRUE(r.header("strict-transport-security").empty()) << "no HSTS over plain HTTP";
    EXPECT_EQ(r.header("x-request-id").size(), 16u);
}

TEST(http_server, csp_names_the_configured_upstream_origin) {
    test_server s(settings_map{{"OPENAI_BASE_URL", "http://127.0.0.1:9/"}});
    const auto r = fetch(s.port(), "GET", "/");
    EXPECT_NE(r.header("content-security-policy").find("connect-src 'self' http://127.0.0.1:9;"), std::string::npos);
}

namespace {
// A JSON answer (errors included) is never a page: it carries the short set that keeps it from
// being framed, sniffed or run as one, not the page's script, media and feature policy.
void expect_api_security_headers(const response& r) {
    EXPECT_EQ(r.header("content-security-policy"), "default-src 'none'; frame-ancestors 'none'");
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
    EXPECT_EQ(r.header("x-frame-options"), "DENY");
    EXPECT_TRUE(r.header("permissions-policy").empty());
    EXPECT_EQ(r.header("x-request-id").size(), 16u);
}
}  // namespace

TEST(http_server, error_responses_also_carry_security_headers) {
    test_server s;
    const auto r = fetch(s.port(), "GET", "/nope.html");
    expect_json_error(r, 404, "not_found");
    expect_api_security_headers(r);
}

TEST(http_server, json_answers_carry_the_short_api_set_and_pages_the_full_one) {
    test_server s;
    const auto join = fetch(s.port(), "POST", "/api/session?action=join");
    EXPECT_EQ(join.status, 200u);
    expect_api_security_headers(join);
    EXPECT_EQ(join.header("cache-control"), "no-store");
    expect_api_security_headers(fetch(s.port(), "GET", "/api/health"));
    const auto page = fetch(s.port(), "GET", "/");
    for (const auto& h : security_header_names) EXPECT_FALSE(page.header(h).empty()) << h;
    EXPECT_NE(page.header("content-security-policy").find("script-src 'self'"), std::string::npos);
}

TEST(http_server, mime_types_and_cacheability) {
    test_server s;
    struct row {
        const char* path;
        const char* type;
    };
    for (const auto& [path, type] : {row{"/app.js", "text/javascript; charset=utf-8"},
                                     row{"/styles.css", "text/css; charset=utf-8"},
                                     row{"/favicon.svg", "image/svg+xml"},
                                     row{"/img/logo.png", "image/png"},
                                     row{"/sub/", "text/html; charset=utf-8"}}) {
        const auto r = fetch(s.port(), "GET", path);
        EXPECT_EQ(r.status, 200u) << path;
        EXPECT_EQ(r.header("content-type"), type) << path;
    }
    EXPECT_EQ(fetch(s.port(), "GET", "/app.js").header("cache-control"), "no-cache");
}

TEST(http_server, etag_and_if_none_match) {
    test_server s;
    const auto first = fetch(s.port(), "GET", "/app.js");
    const auto etag = first.header("etag");
    ASSERT_FALSE(etag.empty());
    const auto again = fetch(s.port(), "GET", "/app.js", {{"If-None-Match", etag}});
    EXPECT_EQ(again.status, 304u);
    EXPECT_TRUE(again.body.empty());
    EXPECT_EQ(again.header("etag"), etag);
    const auto other = fetch(s.port(), "GET", "/app.js", {{"If-None-Match", "\"something-else\""}});
    EXPECT_EQ(other.status, 200u);
}

TEST(http_server, gzip_negotiation) {
    test_server s;
    const auto plain = fetch(s.port(), "GET", "/app.js");
    EXPECT_TRUE(plain.header("content-encoding").empty());
    EXPECT_EQ(plain.header("vary"), "Accept-Encoding");
    const auto gz = fetch(s.port(), "GET", "/app.js", {{"Accept-Encoding", "gzip, deflate, br"}});
    EXPECT_EQ(gz.header("content-encoding"), "gzip");
    EXPECT_EQ(gz.header("vary"), "Accept-Encoding");
    EXPECT_LT(gz.body.size(), plain.body.size());
    ASSERT_GE(gz.body.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(gz.body[0]), 0x1fu);
    EXPECT_EQ(static_cast<unsigned char>(gz.body[1]), 0x8bu);
    EXPECT_NE(gz.header("etag"), plain.header("etag"));
    const auto refused = fetch(s.port(), "GET", "/app.js", {{"Accept-Encoding", "gzip;q=0"}});
    EXPECT_TRUE(refused.header("content-encoding").empty());
}

TEST(http_server, head_has_length_but_no_body) {
    test_server s;
    const auto get = fetch(s.port(), "GET", "/");
    const auto head = fetch(s.port(), "HEAD", "/");
    EXPECT_EQ(head.status, 200u);
    EXPECT_EQ(head.header("content-length"), std::to_string(get.body.size()));
    EXPECT_TRUE(head.body.empty());
}

TEST(http_server, head_on_an_api_answer_has_no_body_either) {
    test_server s;
    http_client c(s.port());
    const auto head = c.request("HEAD", "/api/session?action=stats");
    EXPECT_EQ(head.status, 200u);
    EXPECT_TRUE(head.body.empty());
    EXPECT_NE(head.header("content-length"), "0");
    // the connection is still in sync: the next answer parses
    EXPECT_EQ(c.get("/api/health").json()["status"], "ok");
}

TEST(http_server, traversal_attempts_never_reach_outside_the_root) {
    test_server s;
    const std::vector<std::string> attempts = {
        "/../secret.txt",          "/..%2fsecret.txt",         "/%2e%2e/secret.txt",      "/%2E%2E%2Fsecret.txt",
        "/%252e%252e/secret.txt",  "/..\\secret.txt",          "/%5c..%5csecret.txt",     "/index.html%00.js",
        "//secret.txt",            "/./index.html/../../secret.txt", "/.hidden",          "/link-out.txt",
        "/%c0%ae%c0%ae/secret.txt", "/sub/../../secret.txt",   "/.%2e/secret.txt",        "/img/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e%5csecret.txt",    "/..;/secret.txt",
    };
    ASSERT_GE(attempts.size(), 15u);
    for (const auto& path : attempts) {
        http_client c(s.port());
        const auto r = c.get(path);
        EXPECT_TRUE(r.status == 400 || r.status == 404) << path << " -> " << r.status;
        EXPECT_EQ(r.body.find("TOP-SECRET"), std::string::npos) << path;
        EXPECT_EQ(r.body.find("hidden file"), std::string::npos) << path;
    }
}

TEST(http_server, health_answers_json) {
    test_server s;
    const auto r = fetch(s.port(), "GET", "/api/health");
    EXPECT_EQ(r.status, 200u);
    const auto doc = r.json();
    EXPECT_EQ(doc["status"], "ok");
    EXPECT_EQ(doc["version"], VOICE_BROKER_VERSION);
    EXPECT_TRUE(doc["uptimeSeconds"].is_number_integer());
}

TEST(http_server, unknown_routes_and_wrong_methods) {
    test_server s;
    expect_json_error(fetch(s.port(), "GET", "/api/nothing"), 404, "not_found");
    const auto r = fetch(s.port(), "DELETE", "/index.html");
    expect_json_error(r, 405, "method_not_allowed");
    EXPECT_EQ(r.header("allow"), "GET, HEAD");
    const auto health = fetch(s.port(), "POST", "/api/health");
    expect_json_error(health, 405, "method_not_allowed");
    const auto join = fetch(s.port(), "GET", "/api/session?action=join");
    expect_json_error(join, 405, "method_not_allowed");
    EXPECT_EQ(join.header("allow"), "POST");
}

TEST(http_server, body_too_large_is_413) {
    test_server s(settings_map{{"MAX_BODY_BYTES", "1024"}});
    const auto r = fetch(s.port(), "POST", "/api/session?action=join", {}, std::string(5000, 'x'));
    expect_json_error(r, 413, "payload_too_large");
}

TEST(http_server, headers_too_large_is_431) {
    test_server s(settings_map{{"MAX_HEADER_BYTES", "2048"}});
    const auto r = fetch(s.port(), "GET", "/", {{"X-Padding", std::string(4000, 'a')}});
    expect_json_error(r, 431, "headers_too_large");
}

TEST(http_server, malformed_request_is_400_json) {
    test_server s;
    http_client c(s.port());
    const auto raw = c.raw_exchange("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
    EXPECT_NE(raw.find("HTTP/1.1 400"), std::string::npos) << raw;
    EXPECT_NE(raw.find("\"bad_request\""), std::string::npos) << raw;
}

TEST(http_server, keep_alive_serves_several_requests_on_one_connection) {
    test_server s;
    http_client c(s.port());
    for (int i = 0; i < 5; ++i) {
        const auto r = c.get("/api/health");
        EXPECT_EQ(r.status, 200u);
        EXPECT_TRUE(r.keep_alive);
    }
}

// Issue 15: the access log is written in batches off the I/O thread; no line may be lost,
// doubled or left unredacted on the way.
TEST(http_server, every_request_gets_exactly_one_redacted_access_line) {
    test_server s;
    constexpr int requests = 300;
    {
        http_client c(s.port());
        for (int i = 0; i < requests; ++i) {
            const auto id = "access-" + std::to_string(i);
            ASSERT_EQ(c.get("/api/health?ticket=tk-" + std::to_string(i), {{"X-Request-Id", id}}).status, 200u);
        }
    }
    // The line is logged once the answer is written, which may be after the client read it.
    ASSERT_TRUE(s.logs().wait_for("rid=access-" + std::to_string(requests - 1), std::chrono::seconds(5))) << s.logs().text();
    const auto text = s.logs().text();
    std::map<std::string, int> lines_per_id;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        const auto rid = line.find(" rid=access-");
        if (rid == std::string::npos) continue;
        EXPECT_NE(line.find(" GET /api/health?ticket=[redacted] 200 "), std::string::npos) << line;
        ++lines_per_id[line.substr(rid + 5, line.find(' ', rid + 5) - rid - 5)];
    }
    EXPECT_EQ(lines_per_id.size(), static_cast<std::size_t>(requests));
    for (const auto& [id, n] : lines_per_id) EXPECT_EQ(n, 1) << id;
    EXPECT_EQ(text.find("tk-"), std::string::npos) << "a ticket reached the log";
}

TEST(http_server, pipelined_requests_are_answered_in_order) {
    test_server s;
    http_client c(s.port());
    const auto raw = c.raw_exchange(
        "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const auto first = raw.find("HTTP/1.1 200");
    const auto second = raw.find("HTTP/1.1 404");
    const auto third = raw.find("HTTP/1.1 200", second);
    EXPECT_NE(first, std::string::npos);
    EXPECT_NE(second, std::string::npos);
    EXPECT_NE(third, std::string::npos);
    EXPECT_LT(first, second);
}

TEST(http_server, request_id_is_echoed_when_sane) {
    test_server s;
    EXPECT_EQ(fetch(s.port(), "GET", "/api/health", {{"X-Request-Id", "abc-123"}}).header("x-request-id"), "abc-123");
    EXPECT_NE(fetch(s.port(), "GET", "/api/health", {{"X-Request-Id", "bad id\"<>"}}).header("x-request-id"), "bad id\"<>");
}

TEST(http_server, slow_client_is_cut_off_while_others_are_served) {
    test_server s(settings_map{{"REQUEST_TIMEOUT_SECONDS", "1"}, {"IDLE_TIMEOUT_SECONDS", "1"}});
    http_client slow(s.port());
    slow.send_raw("GET / HTTP/1.1\r\nHost: x\r\n");  // never finishes its headers
    // Meanwhile others are served at once.
    for (int i = 0; i < 3; ++i) EXPECT_EQ(fetch(s.port(), "GET", "/api/health").status, 200u);
    EXPECT_TRUE(slow.closed_by_server(5s)) << "a half-sent request must be dropped after REQUEST_TIMEOUT_SECONDS";
}

TEST(http_server, idle_keep_alive_connection_is_closed_after_idle_timeout) {
    test_server s(settings_map{{"IDLE_TIMEOUT_SECONDS", "1"}});
    http_client c(s.port());
    EXPECT_EQ(c.get("/api/health").status, 200u);
    EXPECT_TRUE(c.closed_by_server(5s));
}

TEST(http_server, two_hundred_idle_and_half_sent_connections_do_not_delay_a_visitor) {
    test_server s;
    std::vector<std::unique_ptr<http_client>> hogs;
    for (int i = 0; i < 200; ++i) {
        hogs.push_back(std::make_unique<http_client>(s.port()));
        if (i % 2 == 0) hogs.back()->send_raw("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    }
    const auto start = std::chrono::steady_clock::now();
    const auto r = fetch(s.port(), "GET", "/");
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.status, 200u);
    EXPECT_LT(took, 2s) << "the visitor waited behind idle connections";
}

TEST(http_server, connections_beyond_the_limit_are_refused) {
    test_server s(settings_map{{"MAX_CONNECTIONS", "3"}});
    std::vector<std::unique_ptr<http_client>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<http_client>(s.port()));
        EXPECT_EQ(held.back()->get("/api/health").status, 200u);
    }
    http_client extra(s.port());
    EXPECT_TRUE(extra.closed_by_server(3s));
    held.clear();
    // Capacity comes back once those close (the server notices the closes asynchronously).
    bool served = false;
    for (int i = 0; i < 50 && !served; ++i) {
        try {
            served = fetch(s.port(), "GET", "/api/health").status == 200;
        } catch (const std::exception&) {
        }
    }
    EXPECT_TRUE(served);
}

TEST(http_server, graceful_shutdown_finishes_an_in_flight_response) {
    // An upstream that holds the token request until the test lets it go: the request is
    // provably in flight when the stop begins.
    auto upstream = std::make_shared<held_upstream>();
    server_options options;
    options.upstream = upstream;
    test_server s(settings_map{{"OPENAI_API_KEY", "test-key"}, {"SHUTDOWN_GRACE_SECONDS", "5"}}, options);
    const auto ticket = fetch(s.port(), "POST", "/api/session?action=join").json()["ticket"].get<std::string>();
    auto answer = std::async(std::launch::async, [&] {
        return fetch(s.port(), "POST", "/api/session?action=token", {{"X-Session-Ticket", ticket}});
    });
    ASSERT_EQ(upstream->mint_called.get_future().wait_for(5s), std::future_status::ready);
    s.get().stop();
    EXPECT_EQ(fetch_or_status(s.port(), "/api/health"), 0) << "no new connections once stopping";
    upstream->release(json_response(200, {{"value", "ek_test"}, {"expiresAt", "x"}}));
    const auto r = answer.get();
    EXPECT_EQ(r.status, 200u);
    EXPECT_FALSE(r.keep_alive) << "the answer tells the client the connection closes";
    s.stop_and_wait();
}

TEST(http_server, shutdown_closes_websockets_with_going_away) {
    test_server s;
    const auto join = fetch(s.port(), "POST", "/api/session?action=join");
    const auto ticket = join.json()["ticket"].get<std::string>();
    ws_client ws(s.port(), "/api/session/ws?ticket=" + ticket);
    ASSERT_TRUE(ws.next_of_type("status"));
    s.get().stop();
    const auto ended = ws.next_of_type("ended", 5s);
    ASSERT_TRUE(ended);
    EXPECT_EQ((*ended)["reason"], "shutdown");
    while (ws.next(5s)) {
    }
    EXPECT_TRUE(ws.is_closed());
    EXPECT_EQ(ws.close_code(), 1001);
    s.stop_and_wait();
}

TEST(http_server, websocket_never_negotiates_compression) {
    // Status frames are ~250 bytes; permessage-deflate would cost a zlib state (~300 KB with the
    // defaults) per client.  The handshake answer must not accept the offer.
    test_server s(settings_map{{"REQUEST_TIMEOUT_SECONDS", "1"}});
    http_client c(s.port());
    const auto answer = c.raw_exchange(
        "GET /api/session/ws?ticket=unknown-ticket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n");
    ASSERT_EQ(answer.rfind("HTTP/1.1 101 ", 0), 0u) << answer;
    const auto head = answer.substr(0, answer.find("\r\n\r\n"));
    EXPECT_EQ(head.find("Sec-WebSocket-Extensions"), std::string::npos) << head;
    EXPECT_NE(answer.find("unknown_ticket"), std::string::npos) << "the channel still says why it closes";
}

// ---- TLS ----------------------------------------------------------------------------------------

namespace {
settings_map tls_settings(const temp_dir& dir) {
    const auto pem = make_self_signed_certificate({"localhost", "127.0.0.1"});
    return {{"TLS_CERT_FILE", dir.write("cert.pem", pem.certificate).string()},
            {"TLS_KEY_FILE", dir.write("key.pem", pem.private_key).string()}};
}
}  // namespace

TEST(https_server, serves_page_and_health_over_tls_with_hsts) {
    temp_dir certs;
    test_server s(tls_settings(certs));
    http_client c(s.port(), {.enabled = true});
    const auto r = c.get("/");
    EXPECT_EQ(r.status, 200u);
    EXPECT_NE(r.header("strict-transport-security").find("max-age="), std::string::npos);
    const auto health = c.get("/api/health");
    EXPECT_EQ(health.json()["status"], "ok");
    EXPECT_NE(health.header("strict-transport-security").find("max-age="), std::string::npos) << "JSON answers too";
    EXPECT_EQ(c.negotiated_tls_version(), "TLSv1.3");
}

TEST(https_server, tls_1_2_is_accepted) {
    temp_dir certs;
    test_server s(tls_settings(certs));
    http_client c(s.port(), {.enabled = true, .max_version = TLS1_2_VERSION});
    EXPECT_EQ(c.get("/api/health").status, 200u);
    EXPECT_EQ(c.negotiated_tls_version(), "TLSv1.2");
}

TEST(https_server, tls_1_1_is_refused) {
    temp_dir certs;
    test_server s(tls_settings(certs));
    EXPECT_THROW(http_client(s.port(), {.enabled = true, .max_version = TLS1_1_VERSION, .min_version = TLS1_VERSION}),
                 std::runtime_error);
    // and the server is still fine
    http_client ok(s.port(), {.enabled = true});
    EXPECT_EQ(ok.get("/api/health").status, 200u);
}

TEST(https_server, plain_http_on_the_tls_port_is_redirected) {
    temp_dir certs;
    test_server s(tls_settings(certs));
    const auto r = fetch(s.port(), "GET", "/index.html?x=1");
    EXPECT_EQ(r.status, 308u);
    EXPECT_EQ(r.header("location"), "https://127.0.0.1:" + std::to_string(s.port()) + "/index.html?x=1");
}

TEST(https_server, a_client_that_says_nothing_or_stalls_its_handshake_is_cut_off) {
    temp_dir certs;
    auto settings = tls_settings(certs);
    settings["TLS_HANDSHAKE_TIMEOUT_SECONDS"] = "1";
    test_server s(settings);
    http_client silent(s.port());
    http_client stalled(s.port());
    stalled.send_raw(std::string("\x16\x03\x01\x02\x00\x01", 6));  // the start of a ClientHello, never finished
    EXPECT_TRUE(silent.closed_by_server(5s)) << "TLS detection must give up after TLS_HANDSHAKE_TIMEOUT_SECONDS";
    EXPECT_TRUE(stalled.closed_by_server(5s)) << "a stalled handshake must be cut off";
    http_client ok(s.port(), {.enabled = true});
    EXPECT_EQ(ok.get("/api/health").status, 200u);
}

TEST(https_server, garbage_on_the_tls_port_gets_a_json_400) {
    temp_dir certs;
    test_server s(tls_settings(certs));
    http_client c(s.port());
    const auto answer = c.raw_exchange("\x01\x02 nonsense\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0u) << answer;
    EXPECT_NE(answer.find("\"bad_request\""), std::string::npos) << answer;
}

TEST(https_server, websocket_over_tls) {
    temp_dir certs;
    test_server s(tls_settings(certs));
    http_client c(s.port(), {.enabled = true});
    const auto join = c.post("/api/session?action=join");
    EXPECT_NE(join.header("set-cookie").find("; Secure"), std::string::npos);
    const auto ticket = join.json()["ticket"].get<std::string>();
    ws_client ws(s.port(), "/api/session/ws?ticket=" + ticket, {}, {.enabled = true});
    const auto status = ws.next_of_type("status");
    ASSERT_TRUE(status);
    EXPECT_EQ((*status)["state"], "active");
}

TEST(https_server, sighup_style_reload_swaps_the_certificate_without_dropping_connections) {
    temp_dir certs;
    auto settings = tls_settings(certs);
    test_server s(settings);
    http_client kept(s.port(), {.enabled = true});
    EXPECT_EQ(kept.get("/api/health").status, 200u);
    const auto fresh = make_self_signed_certificate({"renewed.example"});
    certs.write("cert.pem", fresh.certificate);
    certs.write("key.pem", fresh.private_key);
    s.get().reload(make_config(settings_map{{"STATIC_DIR", s.settings().static_dir}, {"TLS_CERT_FILE", settings["TLS_CERT_FILE"]},
                                            {"TLS_KEY_FILE", settings["TLS_KEY_FILE"]}},
                               s.dir().path()));
    ASSERT_TRUE(s.logs().wait_for("reloaded", 5s));
    EXPECT_EQ(kept.get("/api/health").status, 200u) << "an open connection survives the reload";
    http_client after(s.port(), {.enabled = true});
    EXPECT_EQ(after.get("/api/health").status, 200u);
}

TEST(http_server, trusted_proxy_headers_set_client_address_and_https) {
    test_server s(settings_map{{"TRUSTED_PROXIES", "127.0.0.1"}});
    const auto r = fetch(s.port(), "POST", "/api/session?action=join",
                         {{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https"}});
    EXPECT_NE(r.header("strict-transport-security").find("max-age"), std::string::npos);
    EXPECT_NE(r.header("set-cookie").find("; Secure"), std::string::npos);
    EXPECT_TRUE(s.logs().wait_for("203.0.113.7 POST /api/session?action=join 200", 2s)) << s.logs().text();
}

TEST(http_server, untrusted_forwarded_headers_are_ignored) {
    test_server s(settings_map{{"TRUSTED_PROXIES", ""}});
    const auto r = fetch(s.port(), "GET", "/api/health", {{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https"}});
    EXPECT_TRUE(r.header("strict-transport-security").empty());
    EXPECT_TRUE(s.logs().wait_for("127.0.0.1 GET /api/health 200", 2s));
    EXPECT_EQ(s.logs().text().find("203.0.113.7"), std::string::npos);
}

TEST(http_server, secrets_never_reach_logs_or_responses) {
    const std::string api_key = "test-openai-key-must-not-leak-0123456789";
    const std::string admin = "admin-token-must-not-leak-0123456789";
    test_server s(settings_map{{"OPENAI_API_KEY", api_key}, {"ADMIN_TOKEN", admin}, {"OPENAI_BASE_URL", "http://127.0.0.1:9"}});
    std::vector<response> seen;
    seen.push_back(fetch(s.port(), "GET", "/api/session?action=stats"));
    seen.push_back(fetch(s.port(), "GET", "/api/session?action=forceEndAll", {{"x-admin-token", admin}}));
    seen.push_back(fetch(s.port(), "GET", "/api/session?action=forceEndAll", {{"x-admin-token", "wrong"}}));
    seen.push_back(fetch(s.port(), "GET", "/metrics"));
    const auto join = fetch(s.port(), "POST", "/api/session?action=join");
    const auto ticket = join.json()["ticket"].get<std::string>();
    seen.push_back(fetch(s.port(), "GET", "/api/session?action=status&ticket=" + ticket, {{"X-Session-Ticket", ticket}}));
    seen.push_back(fetch(s.port(), "POST", "/api/session?action=token", {{"X-Session-Ticket", ticket}}));  // upstream unreachable
    s.stop_and_wait();
    const auto logs = s.logs().text();
    EXPECT_EQ(logs.find(api_key), std::string::npos);
    EXPECT_EQ(logs.find(admin), std::string::npos);
    EXPECT_EQ(logs.find(ticket), std::string::npos) << "tickets are secrets too";
    for (const auto& r : seen) {
        EXPECT_EQ(r.body.find(api_key), std::string::npos);
        EXPECT_EQ(r.body.find(admin), std::string::npos);
        for (const auto& [k, v] : r.headers) EXPECT_EQ(v.find(api_key), std::string::npos);
    }
}
