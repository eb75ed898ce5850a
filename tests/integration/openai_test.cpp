// Minting keys and ending calls, against the fake OpenAI (tests/fakes/fake-openai) running as
// its own process on loopback.  Faults are injected through the fake's control API.
#include "test_client.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include "voice_broker/certificate.hpp"

#include <future>
#include <filesystem>
#include <regex>

using namespace voice_broker::testing;
using steady = std::chrono::steady_clock;

namespace {

const std::string real_key = "test-openai-key-for-the-fake-0123456789";

// A plain SDP offer: the fake answers it with a canned answer and opens a call.
const std::string sdp_offer =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n";

std::vector<std::string> fake_args(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"node", source_dir() + "/tests/fakes/fake-openai/server.mjs", "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

class fake_openai {
public:
    explicit fake_openai(const std::vector<std::string>& extra_args = {}, std::string scheme = "http")
        : proc_("/usr/bin/env", fake_args(extra_args), {{"FAKE_OPENAI_KEY", real_key}, {"PATH", "/usr/local/bin:/usr/bin:/bin"}},
                source_dir()),
          scheme_(std::move(scheme)) {
        const auto out = proc_.wait_for_output("\"listening\"", 20s);
        if (!out) throw std::runtime_error("the fake OpenAI did not start: " + proc_.output());
        std::smatch m;
        static const std::regex re(R"(\{"listening":([0-9]+)\})");
        if (!std::regex_search(*out, m, re)) throw std::runtime_error("no port from the fake: " + *out);
        port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
    }
    ~fake_openai() { proc_.signal(SIGTERM); }

    std::uint16_t port() const { return port_; }
    std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
    nlohmann::json state() const { return fetch(port_, "GET", "/__control/state", {}, {}, tls()).json(); }
    tls_options tls() const { return {.enabled = scheme_ == "https"}; }
    void fault(const nlohmann::json& f) const {
        ASSERT_EQ(fetch(port_, "POST", "/__control/faults", {{"Content-Type", "application/json"}}, f.dump()).status, 200u);
    }
    // Waits (on the fake's own event, not a sleep) until it has seen `n` hang-ups.
    bool wait_hangups(int n, int timeout_ms = 3000) const {
        return fetch(port_, "GET", "/__control/wait?hangups=" + std::to_string(n) + "&timeoutMs=" + std::to_string(timeout_ms))
                   .status == 200;
    }
    int count(const std::string& route) const {
        const auto s = state();
        return s["counts"].contains(route) ? s["counts"][route].get<int>() : 0;
    }
    // Opens a call the way the page does in token mode: the SDP offer with the ephemeral key.
    std::string open_call(const std::string& ek) const {
        const auto r = fetch(port_, "POST", "/v1/realtime/calls",
                             {{"Content-Type", "application/sdp"}, {"Authorization", "Bearer " + ek}}, sdp_offer);
        EXPECT_EQ(r.status, 201u) << r.body;
        const auto location = r.header("location");
        return location.substr(location.rfind('/') + 1);
    }

private:
    subprocess proc_;
    std::string scheme_;
    std::uint16_t port_ = 0;
};

settings_map upstream_env(const fake_openai& fake, settings_map extra = {}) {
    extra.try_emplace("OPENAI_API_KEY", real_key);
    extra.try_emplace("OPENAI_BASE_URL", fake.url());
    extra.try_emplace("OPENAI_TIMEOUT_SECONDS", "5");
    return extra;
}

std::string join_ticket(std::uint16_t port) {
    return fetch(port, "POST", "/api/session?action=join").json()["ticket"].get<std::string>();
}

response mint(std::uint16_t port, const std::string& ticket) {
    return fetch(port, "POST", "/api/session?action=token", {{"X-Session-Ticket", ticket}});
}

void expect_error(const response& r, unsigned status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.json()["error"]["code"], code) << r.body;
}

}  // namespace

TEST(openai, mints_a_key_for_the_holder_with_the_documented_request) {
    fake_openai fake;
    test_server s(upstream_env(fake));
    const auto ticket = join_ticket(s.port());
    const auto r = mint(s.port(), ticket);
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto doc = r.json();
    EXPECT_EQ(doc["value"].get<std::string>().rfind("ek_", 0), 0u);
    EXPECT_EQ(doc["model"], "gpt-realtime");
    EXPECT_EQ(doc["callsUrl"], fake.url() + "/v1/realtime/calls");
    EXPECT_TRUE(doc["expiresAt"].is_string());

    const auto seen = fake.state()["requests"];
    ASSERT_EQ(seen.size(), 1u);
    const auto& req = seen[0];
    EXPECT_EQ(req["method"], "POST");
    EXPECT_EQ(req["path"], "/v1/realtime/client_secrets");
    EXPECT_EQ(req["authKind"], "api_key");
    const auto body = req["body"];
    EXPECT_EQ(body["expires_after"], (nlohmann::json{{"anchor", "created_at"}, {"seconds", 60}}));
    EXPECT_EQ(body["session"]["type"], "realtime");
    EXPECT_EQ(body["session"]["model"], "gpt-realtime");
    EXPECT_EQ(body["session"]["audio"]["output"]["voice"], "marin");
    EXPECT_TRUE(body["session"]["instructions"].is_string());
}

TEST(openai, ttl_is_clamped_to_the_time_left_and_the_api_minimum) {
    fake_openai fake;
    {
        test_server s(upstream_env(fake, {{"SESSION_DURATION_SECONDS", "30"}}));
        ASSERT_EQ(mint(s.port(), join_ticket(s.port())).status, 200u);
    }
    {
        test_server s(upstream_env(fake, {{"SESSION_DURATION_SECONDS", "4"}}));
        ASSERT_EQ(mint(s.port(), join_ticket(s.port())).status, 200u);
    }
    const auto seen = fake.state()["requests"];
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0]["body"]["expires_after"]["seconds"], 30);
    EXPECT_EQ(seen[1]["body"]["expires_after"]["seconds"], 10);
}

TEST(openai, only_the_holder_mints_and_at_most_three_keys) {
    fake_openai fake;
    test_server s(upstream_env(fake));
    const auto holder = join_ticket(s.port());
    const auto waiting = join_ticket(s.port());
    expect_error(mint(s.port(), waiting), 409, "not_active");
    expect_error(fetch(s.port(), "POST", "/api/session?action=token"), 400, "missing_ticket");
    expect_error(mint(s.port(), "AAAAAAAAAAAAAAAAAAAAAA"), 404, "unknown_ticket");
    for (int i = 0; i < 3; ++i) EXPECT_EQ(mint(s.port(), holder).status, 200u);
    expect_error(mint(s.port(), holder), 429, "token_limit");
    EXPECT_EQ(fake.count("client_secrets"), 3);
}

TEST(openai, without_an_api_key_minting_says_not_configured) {
    test_server s;
    const auto r = mint(s.port(), join_ticket(s.port()));
    expect_error(r, 503, "not_configured");
    EXPECT_NE(r.json()["error"]["message"].get<std::string>().find(".env.local"), std::string::npos);
}

TEST(openai, upstream_401_is_502_upstream_auth_without_retries) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "401"}});
    test_server s(upstream_env(fake));
    const auto r = mint(s.port(), join_ticket(s.port()));
    expect_error(r, 502, "upstream_auth");
    EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("OPENAI_API_KEY"), std::string::npos);
    EXPECT_EQ(fake.count("client_secrets"), 1) << "a 401 is never retried";
}

TEST(openai, upstream_500_once_is_retried_and_succeeds) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "500"}, {"count", 1}});
    test_server s(upstream_env(fake));
    EXPECT_EQ(mint(s.port(), join_ticket(s.port())).status, 200u);
    EXPECT_EQ(fake.count("client_secrets"), 2);
}

TEST(openai, persistent_503_gives_502_after_two_retries) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "503"}});
    test_server s(upstream_env(fake));
    expect_error(mint(s.port(), join_ticket(s.port())), 502, "upstream_error");
    EXPECT_EQ(fake.count("client_secrets"), 3);
}

TEST(openai, upstream_429_honours_retry_after_and_maps_to_503) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "429"}, {"retryAfter", 1}});
    test_server s(upstream_env(fake));
    const auto t0 = steady::now();
    const auto r = mint(s.port(), join_ticket(s.port()));
    const auto took = steady::now() - t0;
    expect_error(r, 503, "upstream_rate_limited");
    EXPECT_EQ(r.header("retry-after"), "1");
    EXPECT_EQ(fake.count("client_secrets"), 3);
    EXPECT_GE(took, 2s) << "two retries, each waiting Retry-After: 1";
}

TEST(openai, retry_after_beyond_the_total_timeout_is_not_waited_for) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "429"}, {"retryAfter", 30}});
    test_server s(upstream_env(fake, {{"OPENAI_TIMEOUT_SECONDS", "3"}}));
    const auto t0 = steady::now();
    expect_error(mint(s.port(), join_ticket(s.port())), 503, "upstream_rate_limited");
    EXPECT_LT(steady::now() - t0, 3s);
    EXPECT_EQ(fake.count("client_secrets"), 1);
}

TEST(openai, https_upstream_is_verified_against_the_ca_bundle) {
    temp_dir certs;
    const auto pem = voice_broker::make_self_signed_certificate({"127.0.0.1", "localhost"});
    const auto cert = certs.write("upstream.pem", pem.certificate).string();
    const auto key = certs.write("upstream-key.pem", pem.private_key).string();
    fake_openai fake({"--tls-cert", cert, "--tls-key", key}, "https");
    {
        test_server trusting(upstream_env(fake, {{"OPENAI_CA_BUNDLE", cert}}));
        EXPECT_EQ(mint(trusting.port(), join_ticket(trusting.port())).status, 200u);
    }
    {
        // Without the CA bundle the self-signed upstream must be refused, never trusted blindly.
        test_server strict(upstream_env(fake));
        expect_error(mint(strict.port(), join_ticket(strict.port())), 502, "upstream_unreachable");
    }
}

TEST(openai, garbage_body_is_502) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "garbage"}});
    test_server s(upstream_env(fake));
    expect_error(mint(s.port(), join_ticket(s.port())), 502, "upstream_bad_response");
}

TEST(openai, slow_upstream_past_the_timeout_is_504) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "slow"}, {"delayMs", 4000}});
    test_server s(upstream_env(fake, {{"OPENAI_TIMEOUT_SECONDS", "1"}}));
    expect_error(mint(s.port(), join_ticket(s.port())), 504, "upstream_timeout");
}

TEST(openai, an_answer_slower_than_the_request_timeout_still_reaches_the_visitor) {
    // REQUEST_TIMEOUT_SECONDS bounds receiving the request and sending the answer, not the time
    // the upstream takes (OPENAI_TIMEOUT_SECONDS bounds that): the visitor gets the key.
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "slow"}, {"delayMs", 2500}, {"count", 1}});
    test_server s(upstream_env(fake, {{"REQUEST_TIMEOUT_SECONDS", "1"}}));
    const auto r = mint(s.port(), join_ticket(s.port()));
    EXPECT_EQ(r.status, 200u) << r.body;
}

TEST(openai, dropped_connections_are_retried_then_502) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "drop"}});
    test_server s(upstream_env(fake));
    expect_error(mint(s.port(), join_ticket(s.port())), 502, "upstream_unreachable");
    EXPECT_EQ(fake.count("client_secrets"), 3);
}

TEST(openai, a_hung_upstream_does_not_slow_other_requests) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "hang"}});
    test_server s(upstream_env(fake, {{"OPENAI_TIMEOUT_SECONDS", "3"}}));
    const auto ticket = join_ticket(s.port());
    auto stuck = std::async(std::launch::async, [&] { return mint(s.port(), ticket); });
    // The mint is in flight at the fake before we measure.
    ASSERT_EQ(fetch(fake.port(), "GET", "/__control/wait?client_secrets=1&timeoutMs=3000").status, 200u);
    for (int i = 0; i < 5; ++i) {
        const auto t0 = steady::now();
        EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=stats").status, 200u);
        EXPECT_LT(steady::now() - t0, 500ms);
    }
    expect_error(stuck.get(), 504, "upstream_timeout");
}

TEST(openai, the_key_appears_in_no_log_line_or_response) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "401"}, {"count", 1}});
    test_server s(upstream_env(fake));
    const auto ticket = join_ticket(s.port());
    std::vector<response> seen{mint(s.port(), ticket), mint(s.port(), ticket)};
    s.stop_and_wait();
    EXPECT_EQ(s.logs().text().find(real_key), std::string::npos) << s.logs().text();
    EXPECT_NE(s.logs().text().find("request id req_"), std::string::npos) << "the upstream request id is logged";
    for (const auto& r : seen) EXPECT_EQ(r.body.find(real_key), std::string::npos);
}

// ---- ending calls ---------------------------------------------------------------------------

namespace {

// Token mode: mint, open a call at the fake as the page would, report it.
std::string token_mode_call(std::uint16_t port, const fake_openai& fake, const std::string& ticket) {
    const auto ek = mint(port, ticket).json()["value"].get<std::string>();
    const auto call_id = fake.open_call(ek);
    const auto reported = fetch(port, "POST", "/api/session?action=call",
                                {{"X-Session-Ticket", ticket}, {"Content-Type", "application/json"}},
                                nlohmann::json{{"callId", call_id}}.dump());
    EXPECT_EQ(reported.status, 200u) << reported.body;
    return call_id;
}

bool fake_hung_up(const fake_openai& fake, const std::string& call_id) {
    const auto state = fake.state();
    for (const auto& id : state["hangups"]) {
        if (id == call_id) return true;
    }
    return false;
}

}  // namespace

TEST(openai_hangup, token_mode_hangs_up_on_leave) {
    fake_openai fake;
    test_server s(upstream_env(fake));
    const auto ticket = join_ticket(s.port());
    const auto call = token_mode_call(s.port(), fake, ticket);
    const auto t0 = steady::now();
    fetch(s.port(), "POST", "/api/session?action=leave", {{"X-Session-Ticket", ticket}});
    ASSERT_TRUE(fake.wait_hangups(1, 1000)) << "hang-up within a second";
    EXPECT_LT(steady::now() - t0, 1s);
    EXPECT_TRUE(fake_hung_up(fake, call));
}

TEST(openai_hangup, every_call_of_a_session_is_hung_up_not_just_the_last) {
    fake_openai fake;
    test_server s(upstream_env(fake));
    const auto ticket = join_ticket(s.port());
    const auto first = token_mode_call(s.port(), fake, ticket);
    const auto second = token_mode_call(s.port(), fake, ticket);  // e.g. after a page reload
    fetch(s.port(), "POST", "/api/session?action=leave", {{"X-Session-Ticket", ticket}});
    ASSERT_TRUE(fake.wait_hangups(2, 2000));
    EXPECT_TRUE(fake_hung_up(fake, first));
    EXPECT_TRUE(fake_hung_up(fake, second));
}

TEST(openai_hangup, token_mode_hangs_up_on_expiry) {
    fake_openai fake;
    test_server s(upstream_env(fake, {{"SESSION_DURATION_SECONDS", "2"}, {"WARNING_SECONDS", ""}}));
    const auto ticket = join_ticket(s.port());
    const auto call = token_mode_call(s.port(), fake, ticket);
    ASSERT_TRUE(fake.wait_hangups(1, 4000));
    EXPECT_TRUE(fake_hung_up(fake, call));
}

TEST(openai_hangup, token_mode_hangs_up_on_force_end) {
    fake_openai fake;
    test_server s(upstream_env(fake, {{"ADMIN_TOKEN", "a-long-enough-admin-token"}}));
    const auto call = token_mode_call(s.port(), fake, join_ticket(s.port()));
    fetch(s.port(), "GET", "/api/session?action=forceEndAll", {{"x-admin-token", "a-long-enough-admin-token"}});
    ASSERT_TRUE(fake.wait_hangups(1, 1000));
    EXPECT_TRUE(fake_hung_up(fake, call));
}

TEST(openai_hangup, token_mode_hangs_up_on_abandonment) {
    fake_openai fake;
    test_server s(upstream_env(fake, {{"HEARTBEAT_TIMEOUT_SECONDS", "1"}}));
    const auto call = token_mode_call(s.port(), fake, join_ticket(s.port()));
    ASSERT_TRUE(fake.wait_hangups(1, 3000));
    EXPECT_TRUE(fake_hung_up(fake, call));
}

TEST(openai_hangup, token_mode_hangs_up_on_shutdown) {
    fake_openai fake;
    test_server s(upstream_env(fake));
    const auto call = token_mode_call(s.port(), fake, join_ticket(s.port()));
    s.stop_and_wait();
    ASSERT_TRUE(fake.wait_hangups(1, 3000));
    EXPECT_TRUE(fake_hung_up(fake, call));
}

TEST(openai_relay, connect_forwards_the_offer_and_hangs_up_on_every_end) {
    fake_openai fake;
    test_server s(upstream_env(fake, {{"REALTIME_MODE", "relay"}, {"ADMIN_TOKEN", "a-long-enough-admin-token"},
                                      {"MAX_CONCURRENT_USERS", "3"}}));
    std::vector<std::string> tickets{join_ticket(s.port()), join_ticket(s.port()), join_ticket(s.port())};
    for (const auto& t : tickets) {
        const auto r = fetch(s.port(), "POST", "/api/session?action=connect",
                             {{"X-Session-Ticket", t}, {"Content-Type", "application/sdp"}}, sdp_offer);
        ASSERT_EQ(r.status, 201u) << r.body;
        EXPECT_EQ(r.header("content-type"), "application/sdp");
        EXPECT_EQ(r.body.rfind("v=0", 0), 0u);
        EXPECT_TRUE(r.header("location").empty()) << "the call id stays on the server";
    }
    const auto calls = fake.state()["requests"];
    int multipart = 0;
    for (const auto& req : calls) {
        if (req["path"] == "/v1/realtime/calls") {
            EXPECT_EQ(req["authKind"], "api_key");
            EXPECT_NE(req["headers"]["content-type"].get<std::string>().find("multipart/form-data"), std::string::npos);
            ++multipart;
        }
    }
    EXPECT_EQ(multipart, 3);
    // the page cannot register a call of its own in relay mode
    expect_error(fetch(s.port(), "POST", "/api/session?action=call", {{"X-Session-Ticket", tickets[0]}},
                       R"({"callId":"rtc_fake"})"),
                 409, "relay_mode");
    expect_error(mint(s.port(), tickets[0]), 409, "relay_mode");

    fetch(s.port(), "POST", "/api/session?action=leave", {{"X-Session-Ticket", tickets[0]}});
    ASSERT_TRUE(fake.wait_hangups(1, 1000));
    fetch(s.port(), "GET", "/api/session?action=forceEndAll", {{"x-admin-token", "a-long-enough-admin-token"}});
    ASSERT_TRUE(fake.wait_hangups(3, 1000));
    EXPECT_EQ(fake.state()["hangups"].size(), 3u);
}

TEST(openai_relay, a_bad_offer_is_refused_before_reaching_the_upstream) {
    fake_openai fake;
    test_server s(upstream_env(fake, {{"REALTIME_MODE", "relay"}}));
    const auto t = join_ticket(s.port());
    expect_error(fetch(s.port(), "POST", "/api/session?action=connect", {{"X-Session-Ticket", t}, {"Content-Type", "text/plain"}},
                       sdp_offer),
                 415, "unsupported_media_type");
    expect_error(fetch(s.port(), "POST", "/api/session?action=connect",
                       {{"X-Session-Ticket", t}, {"Content-Type", "application/sdp"}}, "hello"),
                 400, "bad_sdp");
    EXPECT_EQ(fake.count("calls"), 0);
}

TEST(openai_binary, a_second_signal_stops_at_once_while_a_request_is_in_flight) {
    fake_openai fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "hang"}});
    temp_dir dir;
    auto env = upstream_env(fake, {{"OPENAI_TIMEOUT_SECONDS", "60"}, {"SHUTDOWN_GRACE_SECONDS", "60"}});
    env["STATIC_DIR"] = make_static_site(dir).string();
    env["PORT"] = "0";
    subprocess p(voice_broker_binary(), {}, env, dir.path());
    const auto out = p.wait_for_output("listening on", 10s);
    ASSERT_TRUE(out) << p.output();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(*out, m, std::regex(R"(listening on http://[0-9.]+:([0-9]+))")));
    const auto port = static_cast<std::uint16_t>(std::stoi(m[1]));
    const auto ticket = join_ticket(port);
    auto stuck = std::async(std::launch::async, [&] {
        try {
            return mint(port, ticket).status;
        } catch (const std::exception&) {
            return 0u;  // the connection was cut: expected
        }
    });
    ASSERT_EQ(fetch(fake.port(), "GET", "/__control/wait?client_secrets=1&timeoutMs=5000").status, 200u);
    p.signal(SIGTERM);
    ASSERT_TRUE(p.wait_for_output("shutting down", 5s));
    EXPECT_FALSE(p.wait_exit(500ms)) << "the first signal waits for the in-flight request";
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(3s), 1) << p.output();
    EXPECT_NE(p.output().find("second signal"), std::string::npos);
    EXPECT_EQ(stuck.get(), 0u);
}

// ---- memory mode across a restart (DATA_DIR) -----------------------------------------------------

namespace {

// The real binary in `dir`, with DATA_DIR in it; waits for its listening line.
struct running_binary {
    std::unique_ptr<subprocess> process;
    std::uint16_t port = 0;
};

running_binary start_binary(const temp_dir& dir, settings_map env) {
    env["STATIC_DIR"] = (dir.path() / "site").string();
    env["PORT"] = "0";
    env["DATA_DIR"] = (dir.path() / "data").string();
    env.try_emplace("MAX_TICKETS_PER_ADDRESS", "0");
    running_binary out;
    out.process = std::make_unique<subprocess>(voice_broker_binary(), std::vector<std::string>{}, env, dir.path());
    const auto started = out.process->wait_for_output("listening on", 20s);
    if (!started) throw std::runtime_error("voice-broker did not start: " + out.process->output());
    std::smatch m;
    if (!std::regex_search(*started, m, std::regex(R"(listening on http://[0-9.]+:([0-9]+))"))) throw std::runtime_error(*started);
    out.port = static_cast<std::uint16_t>(std::stoi(m[1]));
    return out;
}

}  // namespace

TEST(memory_restart, waiting_visitors_keep_their_places_across_a_graceful_restart) {
    temp_dir dir;
    std::filesystem::create_directories(dir.path() / "site");
    dir.write("site/index.html", "<!doctype html><title>v</title>");
    auto first = start_binary(dir, {{"SHUTDOWN_GRACE_SECONDS", "2"}});
    const auto talking = join_ticket(first.port);
    const auto second = join_ticket(first.port);
    const auto third = join_ticket(first.port);
    ws_client waiting(first.port, "/api/session/ws?ticket=" + third);
    ASSERT_TRUE(waiting.next_of_type("status"));
    first.process->signal(SIGTERM);
    EXPECT_EQ(first.process->wait_exit(15s), 0) << first.process->output();
    // The waiting page is told to come back (1012), not that its place ended.
    std::optional<nlohmann::json> last;
    while (auto next = waiting.next(3s)) last = next;
    EXPECT_TRUE(waiting.is_closed());
    EXPECT_EQ(waiting.close_code(), 1012);
    EXPECT_FALSE(last && (*last)["type"] == "ended") << last->dump();

    auto again = start_binary(dir, {});
    const auto s2 = fetch(again.port, "GET", "/api/session?action=status", {{"X-Session-Ticket", second}}).json();
    const auto s3 = fetch(again.port, "GET", "/api/session?action=status", {{"X-Session-Ticket", third}}).json();
    EXPECT_EQ(s2["state"], "active") << "the head of the queue takes the free slot: " << s2.dump();
    EXPECT_EQ(s3["state"], "queued") << s3.dump();
    EXPECT_EQ(s3["position"], 1);
    EXPECT_EQ(fetch(again.port, "GET", "/api/session?action=status", {{"X-Session-Ticket", talking}}).status, 404u)
        << "the session that was talking ended at the restart";
    again.process->signal(SIGTERM);
    EXPECT_EQ(again.process->wait_exit(15s), 0);
}

TEST(memory_restart, a_call_left_by_a_killed_server_is_hung_up_at_its_deadline_after_the_restart) {
    fake_openai fake;
    temp_dir dir;
    std::filesystem::create_directories(dir.path() / "site");
    dir.write("site/index.html", "<!doctype html><title>v</title>");
    auto env = upstream_env(fake, {{"SESSION_DURATION_SECONDS", "4"}, {"WARNING_SECONDS", ""}});
    auto first = start_binary(dir, env);
    const auto joined_at = std::chrono::steady_clock::now();
    const auto call = token_mode_call(first.port, fake, join_ticket(first.port));
    first.process->signal(SIGKILL);  // nothing can hang up from there
    first.process->wait_exit(5s);
    auto again = start_binary(dir, env);
    ASSERT_TRUE(fake.wait_hangups(1, 10000)) << again.process->output();
    const auto at = std::chrono::steady_clock::now() - joined_at;
    EXPECT_TRUE(fake_hung_up(fake, call));
    EXPECT_GE(at, 3500ms) << "hung up before its session's end";
    EXPECT_LE(at, 6000ms) << "the deadline was 4 s after joining";
    again.process->signal(SIGTERM);
    again.process->wait_exit(15s);
}
