// Integration tests for issue 15's hardening beyond the hostile-client probe: fair use per
// address, one answer per request whatever the upstream does, an exception on the service's
// strand, and SIGHUP's work kept off the I/O threads.  Real sockets, the server in this process
// (or the real binary for the signal).
#include "test_client.hpp"
#include "test_support.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/realtime_upstream.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <random>
#include <thread>

using namespace voice_broker;
using namespace voice_broker::testing;

namespace {

response join(std::uint16_t port, header_list headers = {}) { return fetch(port, "POST", "/api/session?action=join", headers); }

std::string ticket_of(const response& r) { return r.json().value("ticket", ""); }

// An upstream that misbehaves on purpose.
class broken_upstream final : public realtime_upstream {
public:
    enum class mode { throws, drops, holds };
    explicit broken_upstream(mode m) : mode_(m) {}
    void mint_token(std::chrono::seconds, std::function<void(http_response)> done) override {
        if (mode_ == mode::throws) throw std::runtime_error("an upstream bug");
        if (mode_ == mode::holds) held_.push_back(std::move(done));  // never answered
        // drops: the callback is destroyed unrun
    }
    void relay_offer(std::string, std::function<void(call_result)>) override {}
    void hang_up(std::string) override {}
    void close() override { held_.clear(); }  // as the real client does: no callback outlives the server

private:
    mode mode_;
    std::vector<std::function<void(http_response)>> held_;
};

settings_map fair_use(std::string tickets, std::string joins) {
    return {{"MAX_TICKETS_PER_ADDRESS", std::move(tickets)}, {"JOIN_RATE_PER_ADDRESS", std::move(joins)}};
}

}  // namespace

// ---- fair use ---------------------------------------------------------------------------------

TEST(fair_use, one_address_holds_at_most_max_tickets_per_address_places) {
    test_server s(fair_use("4", "0"));
    std::vector<std::string> tickets;
    for (int i = 0; i < 4; ++i) {
        const auto r = join(s.port());
        ASSERT_EQ(r.status, 200u) << r.body;
        tickets.push_back(ticket_of(r));
    }
    const auto fifth = join(s.port());
    EXPECT_EQ(fifth.status, 429u) << fifth.body;
    EXPECT_EQ(fifth.json()["error"]["code"], "too_many_tickets");
    // Its own place is still its own: joining again with the ticket is not a new place.
    EXPECT_EQ(join(s.port(), {{"X-Session-Ticket", tickets[3]}}).status, 200u);
    // Behind a trusted proxy, every forwarded address has its own quota.
    EXPECT_EQ(join(s.port(), {{"X-Forwarded-For", "198.51.100.20"}}).status, 200u);
    // A place given up frees one.
    fetch(s.port(), "POST", "/api/session?action=leave", {{"X-Session-Ticket", tickets[0]}});
    EXPECT_EQ(join(s.port()).status, 200u);
}

TEST(fair_use, joins_per_address_per_minute_are_bounded_with_retry_after) {
    test_server s(fair_use("0", "5"));
    for (int i = 0; i < 5; ++i) ASSERT_EQ(join(s.port()).status, 200u);
    const auto sixth = join(s.port());
    EXPECT_EQ(sixth.status, 429u) << sixth.body;
    EXPECT_EQ(sixth.json()["error"]["code"], "too_many_joins");
    const auto wait = std::stoi(sixth.header("retry-after"));
    EXPECT_GT(wait, 0);
    EXPECT_LE(wait, 60);
    EXPECT_EQ(join(s.port(), {{"X-Forwarded-For", "198.51.100.21"}}).status, 200u) << "another address";
}

TEST(fair_use, one_address_holds_at_most_max_connections_per_address_connections) {
    // 127.0.0.1 is a trusted proxy by default (nginx): the limit is for everyone else.
    test_server s(settings_map{{"MAX_CONNECTIONS_PER_ADDRESS", "3"}, {"TRUSTED_PROXIES", ""}});
    std::vector<std::unique_ptr<http_client>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<http_client>(s.port()));
        ASSERT_EQ(held.back()->get("/api/health").status, 200u);
    }
    http_client fourth(s.port());
    EXPECT_THROW(fourth.get("/api/health"), std::runtime_error) << "a fourth connection from the address is closed";
    held.pop_back();  // one closes: a new one is welcome
    bool served = false;
    for (int attempt = 0; attempt < 50 && !served; ++attempt) {
        try {
            served = fetch(s.port(), "GET", "/api/health").status == 200;
        } catch (const std::exception&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the close reaches the server
        }
    }
    EXPECT_TRUE(served);
}

// ---- one answer per request ---------------------------------------------------------------------

TEST(exactly_once, an_exception_on_the_service_strand_answers_500_and_the_server_lives_on) {
    server_options options;
    options.upstream = std::make_shared<broken_upstream>(broken_upstream::mode::throws);
    test_server s(settings_map{{"OPENAI_API_KEY", "test-openai-key"}}, std::move(options));
    const auto t = ticket_of(join(s.port()));
    const auto r = fetch(s.port(), "POST", "/api/session?action=token", {{"X-Session-Ticket", t}});
    EXPECT_EQ(r.status, 500u) << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "internal_error");
    EXPECT_EQ(fetch(s.port(), "GET", "/api/session?action=status", {{"X-Session-Ticket", t}}).status, 200u)
        << "the service still answers";
    EXPECT_TRUE(s.logs().wait_for("an upstream bug", std::chrono::milliseconds(2000)));
}

TEST(exactly_once, a_request_the_upstream_drops_is_answered_500_at_once) {
    server_options options;
    options.upstream = std::make_shared<broken_upstream>(broken_upstream::mode::drops);
    test_server s(settings_map{{"OPENAI_API_KEY", "test-openai-key"}}, std::move(options));
    const auto t = ticket_of(join(s.port()));
    const auto started = std::chrono::steady_clock::now();
    const auto r = fetch(s.port(), "POST", "/api/session?action=token", {{"X-Session-Ticket", t}});
    EXPECT_EQ(r.status, 500u) << r.body;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

TEST(exactly_once, a_request_nobody_answers_does_not_hold_its_connection_past_the_upstream_timeout) {
    server_options options;
    options.upstream = std::make_shared<broken_upstream>(broken_upstream::mode::holds);
    test_server s(settings_map{{"OPENAI_API_KEY", "test-openai-key"}, {"OPENAI_TIMEOUT_SECONDS", "1"}}, std::move(options));
    const auto t = ticket_of(join(s.port()));
    http_client c(s.port(), {}, std::chrono::seconds(30));
    const auto started = std::chrono::steady_clock::now();
    EXPECT_THROW(c.post("/api/session?action=token", {}, {{"X-Session-Ticket", t}}), std::runtime_error)
        << "closed, since no answer is coming";
    const auto waited = std::chrono::steady_clock::now() - started;
    EXPECT_LT(waited, std::chrono::seconds(9)) << "the upstream timeout (1 s) and the margin (5 s): "
                                               << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count() << " ms";
}

// ---- SIGHUP -------------------------------------------------------------------------------------

TEST(reload, a_sighup_reload_of_a_large_site_does_not_stall_the_io_thread) {
    temp_dir dir;
    const auto site = make_static_site(dir);
    // ~96 MB of compressible text: reading and gzipping it takes seconds.
    std::mt19937 random(7);
    for (int f = 0; f < 12; ++f) {
        std::ofstream out(site / ("big" + std::to_string(f) + ".txt"));
        std::string line;
        for (int i = 0; i < 8 * 1024 * 1024 / 64; ++i) {
            line = "line " + std::to_string(random() % 1000) + " of a large and very compressible text file\n";
            out << line.substr(0, 63) << '\n';
        }
    }
    subprocess vb(voice_broker_binary(), {}, {{"PORT", "0"}, {"THREADS", "1"}, {"STATIC_DIR", site.string()}, {"LOG_LEVEL", "info"}},
                  dir.path());
    const auto started = vb.wait_for_output("listening on http://127.0.0.1:", std::chrono::milliseconds(60000));
    ASSERT_TRUE(started) << vb.output();
    const auto at = started->find("127.0.0.1:") + 10;
    const auto port = static_cast<std::uint16_t>(std::stoi(started->substr(at)));
    vb.signal(SIGHUP);
    // While the reload runs, the one I/O thread keeps answering.
    std::chrono::milliseconds slowest{0};
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    int answered = 0;
    while (std::chrono::steady_clock::now() < until) {
        const auto t = std::chrono::steady_clock::now();
        if (fetch(port, "GET", "/api/health").status == 200) ++answered;
        slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t));
    }
    EXPECT_TRUE(vb.wait_for_output("reloaded: certificate, static files and session limits", std::chrono::milliseconds(60000)))
        << vb.output();
    EXPECT_GT(answered, 10);
    EXPECT_LT(slowest, std::chrono::milliseconds(500)) << "a request waited for the reload";
    vb.signal(SIGTERM);
    EXPECT_EQ(vb.wait_exit(std::chrono::milliseconds(15000)), 0);
}
