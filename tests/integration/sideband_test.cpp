// sideband_client against the fake OpenAI on loopback: ws and wss (a CA made at test time, the
// host name checked), every script mode, client events whose effects show in the fake's state,
// refusals, drops, closes, a full send queue, and an HTTP CONNECT proxy (a small Node proxy
// that only tunnels to loopback).  Every wait is bounded and waits for an event, not a sleep.
#include "fake_openai_server.hpp"

#include "voice_broker/certificate.hpp"
#include "voice_broker/sideband_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <gtest/gtest.h>

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <regex>
#include <thread>

using namespace voice_broker;
using namespace voice_broker::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace net = boost::asio;

namespace {

// One I/O thread for the client's connections, and a strand on it for the callbacks.
class io_thread {
public:
    io_thread() : guard_(net::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
    ~io_thread() {
        guard_.reset();
        io_.stop();
        thread_.join();
    }
    net::io_context& io() { return io_; }
    net::any_io_executor strand() { return net::make_strand(io_); }

private:
    net::io_context io_;
    net::executor_work_guard<net::io_context::executor_type> guard_;
    std::thread thread_;
};

// What one sideband told its owner.
class recorder {
public:
    sideband_handlers handlers() {
        return {[this] {
                    std::lock_guard lock(mutex_);
                    ++opened_;
                    changed_.notify_all();
                },
                [this](json event) {
                    std::lock_guard lock(mutex_);
                    events_.push_back(std::move(event));
                    changed_.notify_all();
                },
                [this](sideband_end_info why) {
                    std::lock_guard lock(mutex_);
                    ++ends_;
                    end_ = std::move(why);
                    changed_.notify_all();
                }};
    }
    bool wait_open(std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return opened_ > 0 || ends_ > 0; }) && opened_ > 0;
    }
    std::optional<sideband_end_info> wait_end(std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mutex_);
        if (!changed_.wait_for(lock, timeout, [&] { return ends_ > 0; })) return std::nullopt;
        return end_;
    }
    // Waits until `n` events of `type` arrived.
    bool wait_events(const std::string& type, std::size_t n = 1, std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return count_locked(type) >= n; });
    }
    std::vector<json> events() {
        std::lock_guard lock(mutex_);
        return events_;
    }
    std::size_t count(const std::string& type) {
        std::lock_guard lock(mutex_);
        return count_locked(type);
    }
    int ends() {
        std::lock_guard lock(mutex_);
        return ends_;
    }

private:
    std::size_t count_locked(const std::string& type) const {
        std::size_t n = 0;
        for (const auto& e : events_) n += e.value("type", "") == type;
        return n;
    }
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<json> events_;
    int opened_ = 0;
    int ends_ = 0;
    std::optional<sideband_end_info> end_;
};

sideband_settings settings_for(const std::string& base_url, std::string ca_bundle = {}) {
    sideband_settings s;
    s.base_url = base_url;
    s.api_key = fake_openai_key;
    s.ca_bundle = std::move(ca_bundle);
    s.connect_timeout = 5s;
    return s;
}

std::shared_ptr<sideband_client> client_for(net::io_context& io, sideband_settings s) {
    auto made = sideband_client::create(io, std::move(s));
    if (auto* err = std::get_if<std::string>(&made)) throw std::runtime_error(*err);
    return std::get<std::shared_ptr<sideband_client>>(made);
}

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
std::uint16_t closed_port() {
    net::io_context io;
    net::ip::tcp::acceptor a(io, {net::ip::make_address("127.0.0.1"), 0});
    const auto port = a.local_endpoint().port();
    a.close();
    return port;
}

}  // namespace

TEST(sideband, receives_the_calls_conversation_and_closes_cleanly) {
    fake_openai_server fake;
    io_thread t;
    auto client = client_for(t.io(), settings_for(fake.url()));
    EXPECT_EQ(client->endpoint(), "ws://127.0.0.1:" + std::to_string(fake.port()) + "/v1/realtime?call_id=");
    const auto call = fake.open_call();
    recorder r;
    auto c = client->open(call, t.strand(), r.handlers());
    ASSERT_TRUE(r.wait_open());
    // The default script ("opening"): one user turn, one response with usage.
    ASSERT_TRUE(r.wait_events("response.done"));
    const auto events = r.events();
    EXPECT_EQ(events.front()["type"], "input_audio_buffer.speech_started") << "no session.created on a sideband";
    for (const auto& e : events) {
        if (e["type"] == "response.done") {
            EXPECT_EQ(e["response"]["usage"]["total_tokens"], 220);
        }
    }
    const auto seen = fake.state()["requests"];
    const auto& upgrade = seen.back();
    EXPECT_EQ(upgrade["route"], "sideband");
    EXPECT_EQ(upgrade["authKind"], "api_key");
    EXPECT_EQ(upgrade["status"], 101);
    c->close();
    const auto end = r.wait_end();
    ASSERT_TRUE(end);
    EXPECT_EQ(end->what, sideband_end_info::kind::closed);
    EXPECT_EQ(end->close_code, 1000);
    ASSERT_TRUE(fake.wait("sidebandsClosed=1"));
    EXPECT_EQ(fake.call(call)["sidebands"][0]["closedBy"], "client");
    EXPECT_EQ(r.ends(), 1);
}

TEST(sideband, each_script_mode_arrives_as_the_fake_plays_it) {
    fake_openai_server fake;
    io_thread t;
    auto client = client_for(t.io(), settings_for(fake.url()));

    // silent: nothing at all, until a client event asks for something.
    fake.script({{"mode", "silent"}});
    auto silent_call = fake.open_call();
    recorder silent;
    auto s = client->open(silent_call, t.strand(), silent.handlers());
    ASSERT_TRUE(silent.wait_open());
    EXPECT_FALSE(silent.wait_events("input_audio_buffer.speech_started", 1, 700ms));
    ASSERT_TRUE(s->send(json{{"type", "session.update"}, {"session", {{"type", "realtime"}, {"instructions", "Hi"}}}}.dump()));
    ASSERT_TRUE(silent.wait_events("session.updated"));
    EXPECT_EQ(silent.count("response.done"), 0u);

    // chatty: a turn and a response every 200 ms.
    fake.script({{"mode", "chatty"}, {"chattyIntervalMs", 200}, {"speechMs", 50}});
    recorder chatty;
    auto c = client->open(fake.open_call(), t.strand(), chatty.handlers());
    ASSERT_TRUE(chatty.wait_events("response.done", 3));
    EXPECT_GE(chatty.count("input_audio_buffer.speech_stopped"), 3u);

    // page-session-update: the page's own session.update reaches the sideband as session.updated.
    fake.script({{"mode", "page-session-update"}, {"pageUpdateDelayMs", 100}});
    recorder page;
    auto p = client->open(fake.open_call(), t.strand(), page.handlers());
    ASSERT_TRUE(page.wait_events("session.updated"));
    const auto updated = page.events().back()["session"];
    EXPECT_EQ(updated["audio"]["output"]["voice"], "verse");
    EXPECT_EQ(updated["max_output_tokens"], 4096);
    for (auto* conn : {s.get(), c.get(), p.get()}) conn->close();
    for (auto* rec : {&silent, &chatty, &page}) EXPECT_TRUE(rec->wait_end());
}

TEST(sideband, client_events_take_effect_in_the_fake) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    io_thread t;
    auto client = client_for(t.io(), settings_for(fake.url()));
    const auto call = fake.open_call();
    recorder r;
    auto c = client->open(call, t.strand(), r.handlers());
    // Sent before the upgrade completes: queued, then delivered in order.
    ASSERT_TRUE(c->send(json{{"type", "session.update"},
                             {"event_id", "vb_sync_1"},
                             {"session", {{"type", "realtime"}, {"instructions", "Be brief."}, {"max_output_tokens", 300}}}}
                            .dump()));
    ASSERT_TRUE(c->send(json{{"type", "conversation.item.create"},
                             {"item",
                              {{"type", "message"},
                               {"role", "system"},
                               {"content", {{{"type", "input_text"}, {"text", "Please wrap up now."}}}}}}}
                            .dump()));
    ASSERT_TRUE(c->send(json{{"type", "response.create"}}.dump()));
    ASSERT_TRUE(r.wait_events("response.done"));
    const auto state = fake.call(call);
    ASSERT_GE(state["sessionUpdates"].size(), 1u);
    EXPECT_EQ(state["sessionUpdates"][0]["via"], "sideband");
    EXPECT_EQ(state["session"]["instructions"], "Be brief.");
    EXPECT_EQ(state["session"]["max_output_tokens"], 300);
    ASSERT_EQ(state["responses"].size(), 1u);
    EXPECT_FALSE(state["responses"][0]["wrapUp"].is_null()) << "the system message asked for the goodbye";
    EXPECT_NE(state["responses"][0]["transcript"].get<std::string>().find("Goodbye"), std::string::npos);
    // An unknown client event gets an error, to this connection, and nothing closes.
    ASSERT_TRUE(c->send(json{{"type", "nope"}, {"event_id", "vb_x"}}.dump()));
    ASSERT_TRUE(r.wait_events("error"));
    EXPECT_EQ(r.events().back()["error"]["event_id"], "vb_x");
    EXPECT_EQ(r.ends(), 0);
    c->close();
    EXPECT_TRUE(r.wait_end());
}

TEST(sideband, wss_verifies_the_certificate_and_the_host_name) {
    temp_dir certs;
    const auto pem = make_self_signed_certificate({"127.0.0.1", "localhost"});
    const auto cert = certs.write("upstream.pem", pem.certificate).string();
    const auto key = certs.write("upstream-key.pem", pem.private_key).string();
    fake_openai_server fake({"--tls-cert", cert, "--tls-key", key}, "https");
    io_thread t;
    {
        auto client = client_for(t.io(), settings_for(fake.url(), cert));
        EXPECT_EQ(client->endpoint().rfind("wss://127.0.0.1:", 0), 0u);
        recorder r;
        auto c = client->open(fake.open_call(), t.strand(), r.handlers());
        ASSERT_TRUE(r.wait_open()) << (r.wait_end(0ms) ? r.wait_end(0ms)->detail : "");
        ASSERT_TRUE(r.wait_events("response.done"));
        c->close();
        EXPECT_TRUE(r.wait_end());
    }
    {
        // By name: SNI and the name check use "localhost".
        auto client = client_for(t.io(), settings_for("https://localhost:" + std::to_string(fake.port()), cert));
        recorder r;
        auto c = client->open(fake.open_call(), t.strand(), r.handlers());
        ASSERT_TRUE(r.wait_open());
        c->close();
        EXPECT_TRUE(r.wait_end());
    }
    {
        // Without the CA bundle the self-signed upstream is refused, never trusted blindly.
        auto client = client_for(t.io(), settings_for(fake.url()));
        recorder r;
        auto c = client->open(fake.open_call(), t.strand(), r.handlers());
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::failed);
        EXPECT_NE(end->detail.find("TLS"), std::string::npos) << end->detail;
    }
    {
        // A certificate the CA vouches for, but for another name.
        temp_dir other;
        const auto wrong = make_self_signed_certificate({"api.example.invalid"});
        const auto wrong_cert = other.write("wrong.pem", wrong.certificate).string();
        const auto wrong_key = other.write("wrong-key.pem", wrong.private_key).string();
        fake_openai_server impostor({"--tls-cert", wrong_cert, "--tls-key", wrong_key}, "https");
        auto client = client_for(t.io(), settings_for(impostor.url(), wrong_cert));
        recorder r;
        auto c = client->open("rtc_anything", t.strand(), r.handlers());
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::failed);
        EXPECT_EQ(impostor.count("sideband"), 0) << "no upgrade was sent to it";
    }
}

TEST(sideband, refusals_and_drops_are_reported_never_thrown) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    io_thread t;
    auto client = client_for(t.io(), settings_for(fake.url()));
    {
        recorder r;  // an unknown (or ended) call: HTTP 404, no upgrade
        auto c = client->open("rtc_unknown", t.strand(), r.handlers());
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::refused);
        EXPECT_EQ(end->http_status, 404);
        EXPECT_FALSE(c->send("{}")) << "nothing is sent on an ended connection";
    }
    {
        recorder r;  // a wrong key: upgraded, then an error event and close 3000
        auto s = settings_for(fake.url());
        s.api_key = "sk-wrong-key-0000";
        auto wrong = client_for(t.io(), s);
        auto c = wrong->open(fake.open_call(), t.strand(), r.handlers());
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::closed);
        EXPECT_EQ(end->close_code, 3000);
        EXPECT_EQ(r.count("error"), 1u);
        EXPECT_EQ(end->detail.find("sk-wrong"), std::string::npos);
    }
    {
        recorder r;  // the call ends on OpenAI's side: 1000
        const auto call = fake.open_call();
        auto c = client->open(call, t.strand(), r.handlers());
        ASSERT_TRUE(r.wait_open());
        fake.control("calls/" + call + "/end", {{"sideband", "close"}});
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::closed);
        EXPECT_EQ(end->close_code, 1000);
    }
    {
        recorder r;  // dropped mid-call, no close frame: 1006
        const auto call = fake.open_call();
        auto c = client->open(call, t.strand(), r.handlers());
        ASSERT_TRUE(r.wait_open());
        fake.control("calls/" + call + "/sideband", {{"action", "drop"}});
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::closed);
        EXPECT_EQ(end->close_code, 1006);
    }
    {
        recorder r;  // the sideband route answers 500: a refusal with its status
        fake.fault({{"route", "sideband"}, {"mode", "500"}, {"count", 1}});
        auto c = client->open(fake.open_call(), t.strand(), r.handlers());
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::refused);
        EXPECT_EQ(end->http_status, 500);
    }
    {
        recorder r;  // nothing listens there
        auto refused = client_for(t.io(), settings_for("http://127.0.0.1:" + std::to_string(closed_port())));
        auto c = refused->open("rtc_abc", t.strand(), r.handlers());
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::failed);
        EXPECT_NE(end->detail.find("cannot connect"), std::string::npos) << end->detail;
    }
    {
        recorder r;  // an id that must not reach a URL fails without a request
        const auto before = fake.count("sideband");
        auto c = client->open("rtc_a/../x", t.strand(), r.handlers());
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::failed);
        EXPECT_EQ(fake.count("sideband"), before);
    }
}

TEST(sideband, a_peer_that_never_answers_the_upgrade_times_out) {
    fake_openai_server fake;
    fake.fault({{"route", "sideband"}, {"mode", "hang"}});
    io_thread t;
    auto s = settings_for(fake.url());
    s.connect_timeout = 1s;
    auto client = client_for(t.io(), s);
    recorder r;
    const auto t0 = std::chrono::steady_clock::now();
    auto c = client->open(fake.open_call(), t.strand(), r.handlers());
    const auto end = r.wait_end(5s);
    ASSERT_TRUE(end);
    EXPECT_EQ(end->what, sideband_end_info::kind::failed);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST(sideband, a_full_send_queue_ends_the_connection) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    io_thread t;
    auto s = settings_for(fake.url());
    s.send_queue_limit = 2;
    auto client = client_for(t.io(), s);
    recorder r;
    auto c = client->open(fake.open_call(), t.strand(), r.handlers());
    // Nothing can be written before the upgrade: the third event finds the queue full.
    EXPECT_TRUE(c->send(R"({"type":"response.cancel"})"));
    EXPECT_TRUE(c->send(R"({"type":"response.cancel"})"));
    EXPECT_FALSE(c->send(R"({"type":"response.cancel"})"));
    const auto end = r.wait_end();
    ASSERT_TRUE(end);
    EXPECT_EQ(end->what, sideband_end_info::kind::failed);
    EXPECT_NE(end->detail.find("send queue is full"), std::string::npos);
}

// ---- through an HTTP CONNECT proxy ------------------------------------------------------------

namespace {

class connect_proxy {
public:
    explicit connect_proxy(std::vector<std::string> extra = {})
        : proc_("/usr/bin/env", args(std::move(extra)), {{"PATH", "/usr/local/bin:/usr/bin:/bin"}}, source_dir()) {
        const auto out = proc_.wait_for_output("\"listening\"", 20s);
        if (!out) throw std::runtime_error("the proxy did not start: " + proc_.output());
        std::smatch m;
        static const std::regex re(R"(\{"listening":([0-9]+)\})");
        if (!std::regex_search(*out, m, re)) throw std::runtime_error("no port from the proxy");
        port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
    }
    ~connect_proxy() {
        proc_.signal(SIGTERM);
        proc_.wait_exit(5s);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    bool saw(const std::string& line, std::chrono::milliseconds timeout = 5s) { return proc_.wait_for_output(line, timeout).has_value(); }
    std::string output() const { return proc_.output(); }

private:
    static std::vector<std::string> args(std::vector<std::string> extra) {
        std::vector<std::string> a{"node", source_dir() + "/tests/fakes/connect-proxy/connect-proxy.mjs", "--port", "0"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    subprocess proc_;
    std::uint16_t port_ = 0;
};

}  // namespace

TEST(sideband_proxy, ws_and_wss_go_through_http_connect) {
    temp_dir certs;
    const auto pem = make_self_signed_certificate({"127.0.0.1", "localhost"});
    const auto cert = certs.write("upstream.pem", pem.certificate).string();
    const auto key = certs.write("upstream-key.pem", pem.private_key).string();
    fake_openai_server plain;
    fake_openai_server secure({"--tls-cert", cert, "--tls-key", key}, "https");
    connect_proxy proxy({"--auth", "user:p@ss"});
    io_thread t;
    {
        auto s = settings_for(plain.url());
        s.proxy = proxy_settings::from_values("", "http://user:p%40ss@127.0.0.1:" + proxy.url().substr(proxy.url().rfind(':') + 1), "");
        auto client = client_for(t.io(), s);
        recorder r;
        auto c = client->open(plain.open_call(), t.strand(), r.handlers());
        ASSERT_TRUE(r.wait_open()) << proxy.output();
        ASSERT_TRUE(r.wait_events("response.done"));
        EXPECT_TRUE(proxy.saw(R"({"connect":"127.0.0.1:)" + std::to_string(plain.port()) + R"(","status":200})"));
        c->close();
        EXPECT_TRUE(r.wait_end());
    }
    {
        auto s = settings_for(secure.url(), cert);
        s.proxy = proxy_settings::from_values("http://user:p%40ss@127.0.0.1:" + proxy.url().substr(proxy.url().rfind(':') + 1), "", "");
        auto client = client_for(t.io(), s);
        recorder r;
        auto c = client->open(secure.open_call(), t.strand(), r.handlers());
        ASSERT_TRUE(r.wait_open()) << proxy.output();
        ASSERT_TRUE(r.wait_events("response.done"));
        EXPECT_TRUE(proxy.saw(R"({"connect":"127.0.0.1:)" + std::to_string(secure.port()) + R"(","status":200})"));
        c->close();
        EXPECT_TRUE(r.wait_end());
    }
    {
        // Wrong credentials: the proxy's 407 is the reason given.
        auto s = settings_for(plain.url());
        s.proxy = proxy_settings::from_values("", proxy.url(), "");
        auto client = client_for(t.io(), s);
        recorder r;
        auto c = client->open(plain.open_call(), t.strand(), r.handlers());
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_EQ(end->what, sideband_end_info::kind::failed);
        EXPECT_NE(end->detail.find("407"), std::string::npos) << end->detail;
        EXPECT_EQ(end->detail.find("p@ss"), std::string::npos);
    }
}

TEST(sideband_proxy, no_proxy_goes_direct_and_an_unusable_proxy_is_named) {
    fake_openai_server fake;
    connect_proxy proxy;
    io_thread t;
    {
        auto s = settings_for(fake.url());
        s.proxy = proxy_settings::from_values("", proxy.url(), "localhost,127.0.0.0/8");
        auto client = client_for(t.io(), s);
        recorder r;
        auto c = client->open(fake.open_call(), t.strand(), r.handlers());
        ASSERT_TRUE(r.wait_open());
        c->close();
        EXPECT_TRUE(r.wait_end());
        EXPECT_EQ(proxy.output().find("connect"), std::string::npos) << "the proxy saw nothing";
    }
    {
        auto s = settings_for(fake.url());
        s.proxy = proxy_settings::from_values("", "socks5://127.0.0.1:1080", "");
        auto client = client_for(t.io(), s);
        recorder r;
        auto c = client->open(fake.open_call(), t.strand(), r.handlers());
        const auto end = r.wait_end();
        ASSERT_TRUE(end);
        EXPECT_NE(end->detail.find("socks5"), std::string::npos) << "not silently around the proxy: " << end->detail;
    }
}

TEST(sideband_client, bad_settings_fail_at_creation) {
    net::io_context io;
    auto made = sideband_client::create(io, settings_for("ftp://api.openai.com"));
    ASSERT_TRUE(std::holds_alternative<std::string>(made));
    made = sideband_client::create(io, settings_for("https://api.openai.com", "/nonexistent/ca.pem"));
    ASSERT_TRUE(std::holds_alternative<std::string>(made));
    EXPECT_NE(std::get<std::string>(made).find("OPENAI_CA_BUNDLE"), std::string::npos);
    made = sideband_client::create(io, settings_for("https://api.openai.com/proxy/prefix/"));
    ASSERT_TRUE(std::holds_alternative<std::shared_ptr<sideband_client>>(made));
    EXPECT_EQ(std::get<std::shared_ptr<sideband_client>>(made)->endpoint(), "wss://api.openai.com/proxy/prefix/v1/realtime?call_id=");
}
