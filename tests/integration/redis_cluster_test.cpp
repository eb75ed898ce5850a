// Several real voice-broker processes in redis mode as one broker (issue 12's integration tests):
// the Debug binaries, a real redis-server, a real nginx in front (an upstream of the instances, no
// sticky sessions), and the fake OpenAI.  Visitors are raw clients: HTTP for the API, a
// WebSocket each for the live channel, read on a thread of its own so that every push is seen.
//
//   - 60 visitors join three instances at once (through nginx and directly): exactly N hold a
//     slot at every sampled instant, the places 1..58 are distinct and every instance agrees on
//     each, and the warnings reach each holder once, in order;
//   - kill -9 of the instance that holds a talking visitor's socket: nobody is admitted beyond N,
//     the waiters keep their places after reconnecting through nginx, the fake OpenAI sees the
//     hang-up within 1 s of the deadline, and the next visitor is admitted;
//   - Redis killed (with and without AOF) or paused: joins answer 503 store_unavailable with
//     Retry-After, /api/health says degraded, /metrics voice_broker_store_up 0; the talking
//     visitor's call is still hung up at its deadline; nothing crashes; everything recovers.
#include "cluster_support.hpp"
#include "redis_test_server.hpp"
#include "test_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <latch>
#include <map>
#include <random>
#include <set>
#include <sstream>

namespace voice_broker::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::string unique_prefix(const std::string& test) {
    static std::atomic<int> counter{0};
    return test + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// One visitor's live channel, read on its own thread from the moment it opens.
class live_channel {
public:
    live_channel(std::uint16_t port, const std::string& ticket)
        : ws_(std::make_unique<ws_client>(port, "/api/session/ws?ticket=" + ticket)) {
        reader_ = std::thread([this] { read_loop(); });
    }
    ~live_channel() {
        stop_ = true;
        if (reader_.joinable()) reader_.join();
    }

    std::vector<json> messages() const {
        std::lock_guard lock(mutex_);
        return messages_;
    }
    bool closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }
    int close_code() const {
        std::lock_guard lock(mutex_);
        return close_code_;
    }
    // Waits until `done(messages, closed)` holds; false at the timeout.
    template <class Pred>
    bool wait(Pred done, std::chrono::milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return done(messages_, closed_); });
    }
    // The last status pushed, if any.
    std::optional<json> last_status() const;

private:
    void read_loop() {
        while (!stop_) {
            auto msg = ws_->next(100ms);
            std::lock_guard lock(mutex_);
            if (msg) messages_.push_back(std::move(*msg));
            if (ws_->is_closed()) {
                closed_ = true;
                close_code_ = ws_->close_code();
                changed_.notify_all();
                return;
            }
            if (msg) changed_.notify_all();
        }
    }

    std::unique_ptr<ws_client> ws_;
    std::thread reader_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<json> messages_;
    bool closed_ = false;
    int close_code_ = 0;
};

std::optional<json> newest_status(const std::vector<json>& messages) {
    for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
        if (it->value("type", "") == "status") return *it;
    }
    return std::nullopt;
}

std::optional<json> live_channel::last_status() const { return newest_status(messages()); }

// The warnings pushed as they fired (a warning told again to a channel that opened after it,
// "replay":true, is left out), in order: each must come at most once.
std::vector<int> warnings_in(const std::vector<json>& messages) {
    std::vector<int> out;
    for (const auto& m : messages) {
        if (m.value("type", "") == "warning" && !m.value("replay", false)) out.push_back(m.value("warningSeconds", -1));
    }
    return out;
}

// The warnings a page shows: each warning (by "warningSeconds") once, when it first arrives,
// whether as its first push or told again after a reconnect.
std::vector<int> warnings_shown(const std::vector<json>& messages) {
    std::vector<int> out;
    for (const auto& m : messages) {
        if (m.value("type", "") != "warning") continue;
        const int w = m.value("warningSeconds", -1);
        if (std::find(out.begin(), out.end(), w) == out.end()) out.push_back(w);
    }
    return out;
}

std::size_t count_of_type(const std::vector<json>& messages, const std::string& type) {
    return static_cast<std::size_t>(
        std::count_if(messages.begin(), messages.end(), [&](const json& m) { return m.value("type", "") == type; }));
}

bool has_type(const std::vector<json>& messages, const std::string& type) {
    return std::any_of(messages.begin(), messages.end(), [&](const json& m) { return m.value("type", "") == type; });
}

json status_of(std::uint16_t port, const std::string& ticket) {
    return fetch(port, "GET", "/api/session?action=status", {{"X-Session-Ticket", ticket}}).json();
}

// The brokers of one test, stopped gracefully at the end (exit 0, no sanitizer report) unless a
// test killed one on purpose.
struct broker_set {
    std::vector<std::unique_ptr<broker_process>> brokers;

    ~broker_set() {
        for (auto& b : brokers) {
            if (!b || !b->process().running()) continue;
            const auto code = b->terminate();
            EXPECT_EQ(code, 0) << b->name() << " did not stop cleanly:\n" << b->output();
            if (auto report = b->sanitizer_report()) ADD_FAILURE() << b->name() << ": " << *report;
        }
    }
    broker_process& operator[](std::size_t i) { return *brokers[i]; }
    std::vector<std::uint16_t> ports() const {
        std::vector<std::uint16_t> out;
        for (const auto& b : brokers) out.push_back(b->port());
        return out;
    }
};

settings_map cluster_env(const redis_test_server& redis, const std::string& prefix, settings_map extra) {
    settings_map env{{"STATE_STORE", "redis"},
                     {"REDIS_URL", "redis://127.0.0.1:" + std::to_string(redis.port()) + "/0"},
                     {"REDIS_KEY_PREFIX", prefix},
                     {"TRUSTED_PROXIES", "127.0.0.1"},
                     // Every test visitor comes from loopback: no per-address fair-use limits.
                     {"MAX_TICKETS_PER_ADDRESS", "0"},
                     {"JOIN_RATE_PER_ADDRESS", "0"},
                     {"LOG_LEVEL", "info"}};
    for (auto& [k, v] : extra) env[k] = v;
    return env;
}

std::int64_t zcard(const redis_test_server& redis, const std::string& prefix, const std::string& key) {
    return redis.command({"ZCARD", "{" + prefix + "}:" + key}).integer;
}

// Samples, every 50 ms until stopped, how many hold a slot: in Redis, and in each instance's stats.
class holder_sampler {
public:
    holder_sampler(const redis_test_server& redis, std::string prefix, std::vector<std::uint16_t> ports)
        : redis_(redis), prefix_(std::move(prefix)), ports_(std::move(ports)) {
        thread_ = std::thread([this] { run(); });
    }
    ~holder_sampler() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    // Every sample: {source, active}.
    std::vector<std::pair<std::string, std::int64_t>> samples() const {
        std::lock_guard lock(mutex_);
        return samples_;
    }

private:
    void run() {
        while (!stop_) {
            std::vector<std::pair<std::string, std::int64_t>> round;
            try {
                round.emplace_back("redis", zcard(redis_, prefix_, "a"));
            } catch (const std::exception&) {
            }
            for (auto port : ports_) {
                try {
                    const auto stats = fetch(port, "GET", "/api/session?action=stats").json();
                    if (stats.contains("activeSessions")) round.emplace_back("instance:" + std::to_string(port), stats["activeSessions"]);
                } catch (const std::exception&) {
                }
            }
            {
                std::lock_guard lock(mutex_);
                samples_.insert(samples_.end(), round.begin(), round.end());
            }
            std::this_thread::sleep_for(50ms);  // the sampling period, not a synchronisation
        }
    }

    const redis_test_server& redis_;
    std::string prefix_;
    std::vector<std::uint16_t> ports_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<std::pair<std::string, std::int64_t>> samples_;
};

// ---- 60 visitors, three instances, one queue -------------------------------------------------

TEST(redis_cluster, sixty_visitors_on_three_instances_share_one_queue_and_two_slots) {
    constexpr int visitors = 60;
    constexpr int slots = 2;
    redis_test_server redis;
    const auto prefix = unique_prefix("cluster60");
    broker_set set;
    for (const char* name : {"vb-a", "vb-b", "vb-c"}) {
        set.brokers.push_back(std::make_unique<broker_process>(
            name, cluster_env(redis, prefix,
                              {{"MAX_CONCURRENT_USERS", std::to_string(slots)},
                               {"MAX_QUEUE_LENGTH", "100"},
                               {"SESSION_DURATION_SECONDS", "8"},
                               {"WARNING_SECONDS", "3,2,1"}})));
    }
    nginx_process nginx(set.ports());
    // Where each visitor joins and where its live channel goes: nginx or one instance directly.
    const std::vector<std::uint16_t> doors{nginx.port(), set[0].port(), set[1].port(), set[2].port()};

    std::vector<json> joined(visitors);
    {
        std::latch start(visitors + 1);
        std::vector<std::thread> threads;
        for (int i = 0; i < visitors; ++i) {
            threads.emplace_back([&, i] {
                start.arrive_and_wait();
                try {
                    joined[i] = fetch(doors[i % 4], "POST", "/api/session?action=join").json();
                } catch (const std::exception& e) {
                    joined[i] = json{{"failed", e.what()}};
                }
            });
        }
        start.arrive_and_wait();
        for (auto& t : threads) t.join();
    }
    std::vector<std::string> tickets;
    std::vector<int> active, queued;
    for (int i = 0; i < visitors; ++i) {
        ASSERT_TRUE(joined[i].contains("ticket")) << "visitor " << i << ": " << joined[i].dump();
        tickets.push_back(joined[i]["ticket"]);
        (joined[i]["state"] == "active" ? active : queued).push_back(i);
    }
    ASSERT_EQ(active.size(), static_cast<std::size_t>(slots));
    ASSERT_EQ(queued.size(), static_cast<std::size_t>(visitors - slots));

    holder_sampler sampler(redis, prefix, set.ports());
    std::vector<std::unique_ptr<live_channel>> channels;
    for (int i = 0; i < visitors; ++i) channels.push_back(std::make_unique<live_channel>(doors[(i / 4) % 4], tickets[i]));

    // Every instance, asked directly, gives each waiting visitor the same place; the places are
    // exactly 1..58.
    std::map<int, int> place;  // visitor -> position
    std::set<int> places;
    for (int i : queued) {
        std::vector<int> answers;
        for (auto port : set.ports()) {
            const auto s = status_of(port, tickets[i]);
            ASSERT_EQ(s["state"], "queued") << s.dump();
            answers.push_back(s["position"]);
        }
        EXPECT_EQ(answers[0], answers[1]) << "visitor " << i;
        EXPECT_EQ(answers[0], answers[2]) << "visitor " << i;
        place[i] = answers[0];
        places.insert(answers[0]);
    }
    ASSERT_EQ(zcard(redis, prefix, "ended"), 0) << "a session ended during the check: the places above may have moved";
    ASSERT_EQ(places.size(), queued.size()) << "places are not distinct";
    EXPECT_EQ(*places.begin(), 1);
    EXPECT_EQ(*places.rbegin(), visitors - slots);
    // The pushes agree too (each live channel's newest status).
    for (int i : queued) {
        EXPECT_TRUE(channels[i]->wait([&](const std::vector<json>& m, bool) {
            const auto s = newest_status(m);
            return s && s->value("position", 0) == place[i];
        }, 5s)) << "visitor " << i << " was pushed another place than " << place[i];
    }

    // The holders' sessions run out: each holder hears every warning once, in order, then the end.
    for (int i : active) {
        ASSERT_TRUE(channels[i]->wait([](const std::vector<json>& m, bool closed) { return closed || has_type(m, "ended"); }, 15s))
            << "holder " << i << " never heard the end";
    }
    for (int i : active) {
        const auto m = channels[i]->messages();
        EXPECT_EQ(warnings_in(m), (std::vector<int>{3, 2, 1})) << "holder " << i;
        const auto ended = std::find_if(m.begin(), m.end(), [](const json& x) { return x.value("type", "") == "ended"; });
        ASSERT_NE(ended, m.end());
        EXPECT_EQ((*ended)["reason"], "expired");
        EXPECT_EQ(std::count_if(m.begin(), m.end(), [](const json& x) { return x.value("type", "") == "ended"; }), 1);
    }
    // The slots pass to places 1 and 2; everyone else moves up by two, on every instance.
    for (int i : queued) {
        const int want = place[i] - slots;
        const bool moved = channels[i]->wait([&](const std::vector<json>& m, bool) {
            const auto s = newest_status(m);
            return s && (want <= 0 ? (*s)["state"] == "active" : s->value("position", 0) == want);
        }, 5s);
        EXPECT_TRUE(moved) << "visitor " << i << " (place " << place[i] << ") was not told of the move: "
                           << (channels[i]->last_status() ? channels[i]->last_status()->dump() : "no status");
        if (want > 0) {
            for (auto port : set.ports()) EXPECT_EQ(status_of(port, tickets[i])["position"], want) << "visitor " << i;
        }
    }
    sampler.stop();
    const auto samples = sampler.samples();
    ASSERT_GT(samples.size(), 20u);
    for (const auto& [source, n] : samples) EXPECT_EQ(n, slots) << source;
    std::size_t warned = 0;
    for (int i : queued) warned += count_of_type(channels[i]->messages(), "warning");
    EXPECT_EQ(warned, 0u) << "a waiting visitor was warned";
    std::cout << "cluster: " << samples.size() << " samples of the holders, all " << slots << "\n";
}


// ---- a talking visitor and a queue, and the loss of one instance or of Redis ------------------

settings_map upstream_env(const fake_openai_process& fake) {
    return {{"OPENAI_API_KEY", fake_openai_process::api_key()}, {"OPENAI_BASE_URL", fake.url()}, {"OPENAI_TIMEOUT_SECONDS", "5"}};
}

settings_map merged(settings_map a, const settings_map& b) {
    for (const auto& [k, v] : b) a[k] = v;
    return a;
}

// A visitor who holds the slot and has opened a call the way the page does in token mode: a key
// minted through `mint_port`, the call opened at the fake, its id reported through `report_port`.
struct talker {
    std::string ticket;
    std::string call_id;
    std::int64_t expires_unix_ms = 0;
};

talker start_talking(std::uint16_t join_port, std::uint16_t mint_port, std::uint16_t report_port, const fake_openai_process& fake) {
    talker t;
    const auto joined = fetch(join_port, "POST", "/api/session?action=join").json();
    if (joined.value("state", "") != "active") throw std::runtime_error("the talker was not admitted: " + joined.dump());
    t.ticket = joined["ticket"];
    t.expires_unix_ms = iso_to_unix_ms(joined["expiresAt"]);
    const auto key = fetch(mint_port, "POST", "/api/session?action=token", {{"X-Session-Ticket", t.ticket}});
    if (key.status != 200) throw std::runtime_error("no key: " + key.body);
    t.call_id = fake.open_call(key.json()["value"]);
    const auto reported = fetch(report_port, "POST", "/api/session?action=call",
                                {{"X-Session-Ticket", t.ticket}, {"Content-Type", "application/json"}},
                                json{{"callId", t.call_id}}.dump());
    if (reported.status != 200) throw std::runtime_error("the call was not recorded: " + reported.body);
    return t;
}

// When the fake saw the first hang-up of `call_id` (Unix ms), if it did.
std::optional<std::int64_t> hang_up_time(const fake_openai_process& fake, const std::string& call_id) {
    const auto state = fake.state();
    for (const auto& r : state["requests"]) {
        if (r.value("route", "") == "hangup" && r.value("path", "").find(call_id) != std::string::npos) return iso_to_unix_ms(r["at"]);
    }
    return std::nullopt;
}

TEST(redis_cluster, kill_9_of_the_instance_with_the_talkers_socket_loses_nobody_and_still_hangs_up_on_time) {
    constexpr int waiters = 5;
    redis_test_server redis;
    fake_openai_process fake;
    const auto prefix = unique_prefix("cluster-kill");
    broker_set set;
    for (const char* name : {"vb-a", "vb-b", "vb-c"}) {
        set.brokers.push_back(std::make_unique<broker_process>(
            name, merged(cluster_env(redis, prefix, {{"MAX_CONCURRENT_USERS", "1"}, {"SESSION_DURATION_SECONDS", "6"},
                                                      {"WARNING_SECONDS", "2"}}),
                         upstream_env(fake))));
    }
    nginx_process nginx(set.ports());
    auto& doomed = set[0];

    const auto t = start_talking(doomed.port(), set[1].port(), nginx.port(), fake);
    auto talker_channel = std::make_unique<live_channel>(doomed.port(), t.ticket);
    std::vector<std::string> tickets;
    std::vector<std::unique_ptr<live_channel>> channels;
    for (int i = 0; i < waiters; ++i) {
        const auto j = fetch(nginx.port(), "POST", "/api/session?action=join").json();
        ASSERT_EQ(j["position"], i + 1) << j.dump();
        tickets.push_back(j["ticket"]);
        channels.push_back(std::make_unique<live_channel>(doomed.port(), tickets.back()));
        ASSERT_TRUE(channels.back()->wait([](const std::vector<json>& m, bool) { return newest_status(m).has_value(); }, 5s));
    }
    ASSERT_TRUE(talker_channel->wait([](const std::vector<json>& m, bool) { return newest_status(m).has_value(); }, 5s));
    ASSERT_GT(t.expires_unix_ms - unix_now_ms(), 1500) << "too slow a start: the session is almost over";

    holder_sampler sampler(redis, prefix, {set[1].port(), set[2].port()});
    doomed.crash();
    ASSERT_TRUE(talker_channel->wait([](const std::vector<json>&, bool closed) { return closed; }, 5s));
    for (auto& c : channels) ASSERT_TRUE(c->wait([](const std::vector<json>&, bool closed) { return closed; }, 5s));

    // The pages come back through nginx (which finds the dead instance refusing and moves on),
    // with their tickets, and are told the same thing as before.
    talker_channel = std::make_unique<live_channel>(nginx.port(), t.ticket);
    ASSERT_TRUE(talker_channel->wait([](const std::vector<json>& m, bool) { return newest_status(m).has_value(); }, 5s));
    const auto talker_status = *talker_channel->last_status();
    EXPECT_EQ(talker_status["state"], "active");
    // The same deadline (each instance maps Redis's clock to its own: a few ms apart at most).
    EXPECT_NEAR(iso_to_unix_ms(talker_status["expiresAt"]), t.expires_unix_ms, 50) << talker_status.dump();
    for (int i = 0; i < waiters; ++i) {
        channels[i] = std::make_unique<live_channel>(nginx.port(), tickets[i]);
        ASSERT_TRUE(channels[i]->wait([](const std::vector<json>& m, bool) { return newest_status(m).has_value(); }, 5s));
        EXPECT_EQ((*channels[i]->last_status())["position"], i + 1) << "waiter " << i << " lost its place";
    }

    // A survivor ends the session at its deadline and hangs the call up.
    const auto wait_ms = std::max<std::int64_t>(0, t.expires_unix_ms - unix_now_ms()) + 5000;
    ASSERT_TRUE(fake.wait_hangups(1, std::chrono::milliseconds{wait_ms})) << set[1].output() << set[2].output();
    const auto hung_up_at = hang_up_time(fake, t.call_id);
    ASSERT_TRUE(hung_up_at) << fake.state()["requests"].dump();
    EXPECT_GE(*hung_up_at, t.expires_unix_ms - 100) << "hung up before the deadline";
    EXPECT_LE(*hung_up_at, t.expires_unix_ms + 1000) << "hung up more than 1 s after the deadline";
    ASSERT_TRUE(talker_channel->wait([](const std::vector<json>& m, bool) { return has_type(m, "ended"); }, 5s));
    EXPECT_EQ(warnings_shown(talker_channel->messages()), std::vector<int>{2}) << "the page shows the warning, once";
    EXPECT_LE(warnings_in(talker_channel->messages()).size(), 1u) << "the warning was pushed as new twice";

    // The next visitor is admitted, the others move up.
    ASSERT_TRUE(channels[0]->wait([](const std::vector<json>& m, bool) {
        const auto s = newest_status(m);
        return s && (*s)["state"] == "active";
    }, 5s)) << "the first waiter was not admitted";
    for (int i = 1; i < waiters; ++i) {
        EXPECT_TRUE(channels[i]->wait([&](const std::vector<json>& m, bool) {
            const auto s = newest_status(m);
            return s && s->value("position", 0) == i;
        }, 5s)) << "waiter " << i;
    }
    sampler.stop();
    const auto samples = sampler.samples();
    ASSERT_GT(samples.size(), 10u);
    for (const auto& [source, n] : samples) EXPECT_EQ(n, 1) << source << ": more than one holder, or none";
}

// Redis restarted empty (no AOF) while a visitor talks: the lease is gone from Redis, so nothing
// there will ever end it; the instances that knew it still end it at its deadline and hang up.
TEST(redis_cluster, a_lease_that_redis_lost_still_ends_at_its_deadline) {
    redis_test_server redis;
    fake_openai_process fake;
    const auto prefix = unique_prefix("cluster-lost");
    broker_set set;
    for (const char* name : {"vb-a", "vb-b"}) {
        set.brokers.push_back(std::make_unique<broker_process>(
            name, merged(cluster_env(redis, prefix, {{"MAX_CONCURRENT_USERS", "1"}, {"SESSION_DURATION_SECONDS", "5"}}),
                         upstream_env(fake))));
    }
    const auto t = start_talking(set[0].port(), set[1].port(), set[0].port(), fake);
    live_channel talker_channel(set[1].port(), t.ticket);
    ASSERT_TRUE(talker_channel.wait([](const std::vector<json>& m, bool) { return newest_status(m).has_value(); }, 5s));
    redis.restart();  // kill -9 and start again: without AOF, empty
    for (std::size_t i = 0; i < 2; ++i) ASSERT_TRUE(set[i].wait_log("connected as instance", 10s, 2)) << set[i].output();
    ASSERT_LT(unix_now_ms(), t.expires_unix_ms) << "too slow: the deadline passed before Redis was back";
    EXPECT_EQ(zcard(redis, prefix, "a"), 0);

    ASSERT_TRUE(fake.wait_hangups(1, std::chrono::milliseconds{std::max<std::int64_t>(0, t.expires_unix_ms - unix_now_ms()) + 5000}))
        << set[0].output() << set[1].output();
    const auto hung_up_at = hang_up_time(fake, t.call_id);
    ASSERT_TRUE(hung_up_at);
    EXPECT_GE(*hung_up_at, t.expires_unix_ms - 100) << "hung up before the deadline";
    EXPECT_LE(*hung_up_at, t.expires_unix_ms + 1000) << "hung up more than 1 s after the deadline";
    EXPECT_TRUE(talker_channel.wait([](const std::vector<json>& m, bool) { return has_type(m, "ended"); }, 5s))
        << "the talker's page was not told";
    EXPECT_TRUE(set[1].wait_log("Redis lost it", 1s)) << set[1].output();
}

// ---- a rolling restart of every instance during a live call and a queue ----------------------

// One visitor's live channel as the page keeps it: through nginx, a heartbeat every 5 s, and on
// close 1012 ("service restart") back at once with the same ticket (after 0-250 ms, the page's
// spread), retrying while nginx finds no instance.  Every message of every connection is kept.
class page_channel {
public:
    page_channel(std::uint16_t port, std::string ticket) : port_(port), ticket_(std::move(ticket)) {
        thread_ = std::thread([this] { run(); });
    }
    ~page_channel() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }

    std::vector<json> messages() const {
        std::lock_guard lock(mutex_);
        return messages_;
    }
    // How many connections opened, and the close codes seen (in order).
    int connections() const {
        std::lock_guard lock(mutex_);
        return connections_;
    }
    std::vector<int> close_codes() const {
        std::lock_guard lock(mutex_);
        return close_codes_;
    }
    // Each time without a socket: {closed, reopened} in Unix ms.
    std::vector<std::pair<std::int64_t, std::int64_t>> gaps() const {
        std::lock_guard lock(mutex_);
        return gaps_;
    }
    // The longest time between a close and the next open (ms).
    std::int64_t longest_gap_ms() const {
        std::lock_guard lock(mutex_);
        return longest_gap_ms_;
    }
    std::string failure() const {
        std::lock_guard lock(mutex_);
        return failure_;
    }
    // Messages received on the current connection (since it opened).
    std::vector<json> current_messages() const {
        std::lock_guard lock(mutex_);
        return {messages_.begin() + static_cast<std::ptrdiff_t>(current_from_), messages_.end()};
    }
    bool connected() const {
        std::lock_guard lock(mutex_);
        return connected_;
    }
    // What the page knows at one moment.
    struct view {
        const std::vector<json>& all;  // every message of every connection
        std::vector<json> current;     // those of the open connection
        bool connected;
    };
    // Waits until `done(view)` holds; false at the timeout.
    template <class Pred>
    bool wait(Pred done, std::chrono::milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            return done(view{messages_, {messages_.begin() + static_cast<std::ptrdiff_t>(current_from_), messages_.end()}, connected_});
        });
    }

private:
    void run() {
        std::mt19937 random{std::random_device{}()};
        steady::time_point closed_at{};
        std::int64_t closed_unix_ms = 0;
        auto give_up = steady::now() + 20s;
        while (!stop_) {
            std::unique_ptr<ws_client> ws;
            try {
                ws = std::make_unique<ws_client>(port_, "/api/session/ws?ticket=" + ticket_);
            } catch (const std::exception& e) {
                if (steady::now() > give_up) {
                    std::lock_guard lock(mutex_);
                    failure_ = std::string("no reconnect within 20 s: ") + e.what();
                    changed_.notify_all();
                    return;
                }
                std::this_thread::sleep_for(50ms);  // the retry back-off of a page, not a synchronisation
                continue;
            }
            {
                std::lock_guard lock(mutex_);
                ++connections_;
                connected_ = true;
                current_from_ = messages_.size();
                if (closed_at != steady::time_point{}) {
                    gaps_.emplace_back(closed_unix_ms, unix_now_ms());
                    longest_gap_ms_ = std::max<std::int64_t>(
                        longest_gap_ms_, std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - closed_at).count());
                }
                changed_.notify_all();
            }
            auto next_heartbeat = steady::now() + 5s;
            int code = 0;
            while (!stop_) {
                auto msg = ws->next(100ms);
                if (!ws->is_closed() && steady::now() >= next_heartbeat) {
                    try {
                        ws->send(R"({"type":"heartbeat"})");
                    } catch (const std::exception&) {
                    }
                    next_heartbeat = steady::now() + 5s;
                }
                std::lock_guard lock(mutex_);
                if (msg) messages_.push_back(std::move(*msg));
                if (ws->is_closed()) {
                    code = ws->close_code();
                    close_codes_.push_back(code);
                    connected_ = false;
                    closed_at = steady::now();
                    closed_unix_ms = unix_now_ms();
                    changed_.notify_all();
                    break;
                }
                if (msg) changed_.notify_all();
            }
            if (stop_ || code != 1012) return;  // only a restart brings the page back
            give_up = steady::now() + 20s;
            std::this_thread::sleep_for(std::chrono::milliseconds{std::uniform_int_distribution<int>(0, 250)(random)});
        }
    }

    std::uint16_t port_;
    std::string ticket_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<json> messages_;
    std::size_t current_from_ = 0;
    bool connected_ = false;
    int connections_ = 0;
    std::vector<int> close_codes_;
    std::int64_t longest_gap_ms_ = 0;
    std::vector<std::pair<std::int64_t, std::int64_t>> gaps_;
    std::string failure_;
};

bool health_answers(std::uint16_t port) {
    try {
        return fetch(port, "GET", "/api/health").status == 200;
    } catch (const std::exception&) {
        return false;
    }
}

TEST(redis_cluster, a_rolling_restart_during_a_call_and_a_queue_of_20_loses_no_place_no_call_and_no_warning) {
    constexpr int waiters = 20;
    constexpr int session_s = 30;
    // One warning per restart: instance i gets SIGTERM 150 ms before warning i, so that each
    // warning falls while that instance is down or starting (its restart takes 200-400 ms here),
    // and while the pages it held are coming back (the page's 0-250 ms spread after 1012).
    const std::vector<int> warnings{24, 17, 10};
    redis_test_server redis;
    fake_openai_process fake;
    const auto prefix = unique_prefix("cluster-rolling");
    // Fixed ports: nginx's upstream names them, and a restarted instance takes its old one again.
    std::vector<std::uint16_t> ports;
    while (ports.size() < 3) {
        const auto p = free_loopback_port();
        if (std::find(ports.begin(), ports.end(), p) == ports.end()) ports.push_back(p);
    }
    const std::vector<std::string> names{"vb-a", "vb-b", "vb-c"};
    std::vector<settings_map> envs;
    broker_set set;
    for (std::size_t i = 0; i < 3; ++i) {
        envs.push_back(merged(cluster_env(redis, prefix,
                                          {{"MAX_CONCURRENT_USERS", "1"},
                                           {"MAX_QUEUE_LENGTH", "50"},
                                           {"SESSION_DURATION_SECONDS", std::to_string(session_s)},
                                           {"WARNING_SECONDS", "24,17,10"},
                                           {"PORT", std::to_string(ports[i])}}),
                              upstream_env(fake)));
        set.brokers.push_back(std::make_unique<broker_process>(names[i], envs[i]));
    }
    // The upstream that docker/ ships for several instances (the one a rolling restart runs behind).
    nginx_process nginx(ports, nginx_process::flavour::several_instances);

    const auto t = start_talking(nginx.port(), nginx.port(), nginx.port(), fake);
    page_channel talker_channel(nginx.port(), t.ticket);
    std::vector<std::string> tickets;
    std::vector<std::unique_ptr<page_channel>> channels;
    for (int i = 0; i < waiters; ++i) {
        const auto j = fetch(nginx.port(), "POST", "/api/session?action=join").json();
        ASSERT_EQ(j["position"], i + 1) << j.dump();
        tickets.push_back(j["ticket"]);
        channels.push_back(std::make_unique<page_channel>(nginx.port(), tickets.back()));
    }
    const auto has_status = [](const page_channel::view& v) { return newest_status(v.current).has_value(); };
    ASSERT_TRUE(talker_channel.wait(has_status, 5s));
    for (auto& c : channels) ASSERT_TRUE(c->wait(has_status, 5s)) << c->failure();
    const auto first_warning_at = t.expires_unix_ms - warnings[0] * 1000;
    ASSERT_GT(first_warning_at - 150 - unix_now_ms(), 0) << "too slow a start: the first warning is already due";

    holder_sampler sampler(redis, prefix, ports);
    struct restart_record {
        std::int64_t sigterm_at, exited_at, listening_at, healthy_at;
    };
    std::vector<restart_record> restarts;
    for (std::size_t i = 0; i < 3; ++i) {
        // Scheduling (when to act), not synchronisation: the restart starts 150 ms before warning i.
        const auto start_at = t.expires_unix_ms - warnings[i] * 1000 - 150;
        if (const auto wait = start_at - unix_now_ms(); wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds{wait});
        restart_record r{};
        r.sigterm_at = unix_now_ms();
        const auto code = set[i].terminate(15s);
        r.exited_at = unix_now_ms();
        ASSERT_EQ(code, 0) << names[i] << " did not stop cleanly:\n" << set[i].output();
        if (auto report = set[i].sanitizer_report()) ADD_FAILURE() << names[i] << ": " << *report;
        set.brokers[i] = std::make_unique<broker_process>(names[i], envs[i]);
        r.listening_at = unix_now_ms();
        ASSERT_EQ(set[i].port(), ports[i]);
        ASSERT_TRUE(eventually([&] { return health_answers(ports[i]); }, 10s)) << set[i].output();
        r.healthy_at = unix_now_ms();
        restarts.push_back(r);
    }
    ASSERT_LT(unix_now_ms(), t.expires_unix_ms - 1000) << "too slow: the restarts ran past the session";

    // Every page that was closed with 1012 came back with its ticket and was told its state again.
    for (auto* c : [&] {
             std::vector<page_channel*> all{&talker_channel};
             for (auto& c : channels) all.push_back(c.get());
             return all;
         }()) {
        EXPECT_TRUE(c->wait([](const page_channel::view& v) { return v.connected && newest_status(v.current).has_value(); }, 3s))
            << c->failure();
        for (int code : c->close_codes()) EXPECT_EQ(code, 1012);
    }
    if (HasFailure()) {
        std::istringstream log(nginx.error_log());
        std::string line, kept;
        int no_live = 0;
        while (std::getline(log, line)) {
            if (line.find("no live upstreams") != std::string::npos) ++no_live;
            else if (kept.size() < 12000) kept += line + "\n";
        }
        FAIL() << "at deadline " << std::showpos << unix_now_ms() - t.expires_unix_ms << std::noshowpos << " ms; nginx (and " << no_live << " \"no live upstreams\"):\n" << kept;
    }
    // The talker still holds the slot, with the same deadline, on every instance; no hang-up yet.
    for (auto port : ports) {
        const auto s = status_of(port, t.ticket);
        ASSERT_EQ(s.value("state", ""), "active") << "at deadline" << unix_now_ms() - t.expires_unix_ms << " ms on :" << port << ": "
                                                  << s.dump() << "\nhang-up: " << hang_up_time(fake, t.call_id).value_or(0) - t.expires_unix_ms
                                                  << "\n" << set[0].output() << set[1].output() << set[2].output();
        EXPECT_NEAR(iso_to_unix_ms(s.value("expiresAt", "")), t.expires_unix_ms, 50) << s.dump();
    }
    const auto talker_now = newest_status(talker_channel.current_messages());
    ASSERT_TRUE(talker_now);
    ASSERT_EQ(talker_now->value("state", ""), "active") << talker_now->dump();
    EXPECT_NEAR(iso_to_unix_ms((*talker_now)["expiresAt"]), t.expires_unix_ms, 50) << talker_now->dump();
    EXPECT_FALSE(hang_up_time(fake, t.call_id)) << "the call was hung up during the restarts";
    // Each waiter keeps its place on every (new) instance and on its page: 1..20, in join order.
    for (int i = 0; i < waiters; ++i) {
        for (auto port : ports) {
            const auto s = status_of(port, tickets[i]);
            EXPECT_EQ(s.value("state", ""), "queued") << "waiter " << i << ": " << s.dump();
            EXPECT_EQ(s.value("position", 0), i + 1) << "waiter " << i << " on :" << port << ": " << s.dump();
        }
        const auto pushed = newest_status(channels[i]->current_messages());
        ASSERT_TRUE(pushed) << "waiter " << i;
        EXPECT_EQ(pushed->value("position", 0), i + 1) << "waiter " << i << ": " << pushed->dump();
    }
    const auto checked_at = unix_now_ms();
    ASSERT_LT(checked_at, t.expires_unix_ms) << "the checks above ran past the deadline: the places may have moved";

    // The call is hung up at its deadline, not before, within 1 s.  (The fake's wait is asked in
    // steps shorter than the test client's 10 s request timeout.)
    bool hung_up = false;
    const auto give_up = steady::now() + std::chrono::milliseconds{std::max<std::int64_t>(0, t.expires_unix_ms - unix_now_ms()) + 5000};
    while (!hung_up && steady::now() < give_up) {
        hung_up = fake.wait_hangups(1, std::min<std::chrono::milliseconds>(
                                           8s, std::chrono::duration_cast<std::chrono::milliseconds>(give_up - steady::now()) + 1ms));
    }
    ASSERT_TRUE(hung_up) << set[0].output() << set[1].output() << set[2].output();
    const auto hung_up_at = hang_up_time(fake, t.call_id);
    ASSERT_TRUE(hung_up_at) << fake.state()["requests"].dump();
    EXPECT_GE(*hung_up_at, t.expires_unix_ms - 100) << "hung up before the deadline";
    EXPECT_LE(*hung_up_at, t.expires_unix_ms + 1000) << "hung up more than 1 s after the deadline";
    ASSERT_TRUE(talker_channel.wait([](const page_channel::view& v) { return has_type(v.all, "ended"); }, 5s));
    // Every configured warning reached the talker's page, across its reconnects: the page shows
    // each once.  A warning that fired while the page had no socket is told again on the next
    // one (marked "replay"); no warning is pushed as new twice.
    const auto talker_messages = talker_channel.messages();
    auto fresh = warnings_in(talker_messages);
    std::sort(fresh.begin(), fresh.end());
    EXPECT_EQ(std::adjacent_find(fresh.begin(), fresh.end()), fresh.end()) << "a warning was pushed as new twice";
    for (const auto& m : talker_messages) {
        if (m.value("type", "") != "warning") continue;
        EXPECT_NE(std::find(warnings.begin(), warnings.end(), m.value("warningSeconds", -1)), warnings.end()) << m.dump();
        EXPECT_LE(m.value("remainingSeconds", 1000), m.value("warningSeconds", -1)) << "told before it was due: " << m.dump();
    }
    EXPECT_EQ(warnings_shown(talker_messages), warnings) << [&] {
        std::ostringstream why;
        why << "the talker's page had no socket (ms from the deadline):";
        for (const auto& [closed, opened] : talker_channel.gaps()) {
            why << " [" << closed - t.expires_unix_ms << ", " << opened - t.expires_unix_ms << "]";
        }
        why << "; the warnings were due at";
        for (int w : warnings) why << " " << -w * 1000;
        return why.str();
    }();
    // The first waiter gets the slot; the others move up by one.
    EXPECT_TRUE(channels[0]->wait([](const page_channel::view& v) {
        const auto s = newest_status(v.current);
        return s && (*s)["state"] == "active";
    }, 5s));
    for (int i = 1; i < waiters; ++i) {
        EXPECT_TRUE(channels[i]->wait([&](const page_channel::view& v) {
            const auto s = newest_status(v.current);
            return s && s->value("position", 0) == i;
        }, 5s)) << "waiter " << i;
    }
    sampler.stop();
    const auto samples = sampler.samples();
    ASSERT_GT(samples.size(), 20u);
    for (const auto& [source, n] : samples) EXPECT_EQ(n, 1) << source << ": more than one holder, or none";

    int reconnects = 0;
    std::int64_t longest_gap = talker_channel.longest_gap_ms();
    for (auto& c : channels) {
        reconnects += c->connections() - 1;
        longest_gap = std::max(longest_gap, c->longest_gap_ms());
    }
    std::cout << "rolling restart (Unix ms relative to the talker's deadline " << t.expires_unix_ms << "):\n";
    for (std::size_t i = 0; i < restarts.size(); ++i) {
        const auto& r = restarts[i];
        std::cout << "  " << names[i] << ": SIGTERM at " << r.sigterm_at - t.expires_unix_ms << ", exited +" << r.exited_at - r.sigterm_at
                  << " ms, listening +" << r.listening_at - r.sigterm_at << " ms, healthy +" << r.healthy_at - r.sigterm_at
                  << " ms; warning " << warnings[i] << " s due at +" << (t.expires_unix_ms - warnings[i] * 1000) - r.sigterm_at
                  << " ms\n";
    }
    std::cout << "  talker: " << count_of_type(talker_messages, "warning") - warnings_in(talker_messages).size()
              << " warning(s) told again after a reconnect, " << warnings_in(talker_messages).size() << " pushed as they fired\n";
    std::cout << "  talker: " << talker_channel.connections() << " connection(s); waiters: " << reconnects
              << " reconnect(s); longest gap " << longest_gap << " ms; hung up at deadline"
              << (*hung_up_at >= t.expires_unix_ms ? "+" : "") << *hung_up_at - t.expires_unix_ms << " ms; " << samples.size()
              << " holder samples, all 1\n";
}

// How Redis goes away in the next test.
enum class redis_outage { killed_without_aof, killed_with_aof, paused };

std::string to_string(redis_outage o) {
    switch (o) {
    case redis_outage::killed_without_aof: return "killed_without_aof";
    case redis_outage::killed_with_aof: return "killed_with_aof";
    case redis_outage::paused: return "paused";
    }
    return "?";
}

class redis_cluster_outage : public ::testing::TestWithParam<redis_outage> {};

TEST_P(redis_cluster_outage, joins_get_503_health_degrades_calls_still_end_on_time_and_everything_recovers) {
    const auto outage = GetParam();
    redis_server_options options;
    // AOF as the deployment runs it, but fsynced at every write: a kill -9 then loses nothing, so
    // the test can say exactly what must survive.
    if (outage == redis_outage::killed_with_aof) options.extra_config = {"appendonly yes", "appendfsync always"};
    redis_test_server redis(options);
    fake_openai_process fake;
    const auto prefix = unique_prefix("cluster-outage");
    broker_set set;
    for (const char* name : {"vb-a", "vb-b"}) {
        set.brokers.push_back(std::make_unique<broker_process>(
            name, merged(cluster_env(redis, prefix, {{"MAX_CONCURRENT_USERS", "1"}, {"SESSION_DURATION_SECONDS", "5"},
                                                      {"WARNING_SECONDS", "2"}}),
                         upstream_env(fake))));
    }
    auto& a = set[0];
    auto& b = set[1];

    const auto t = start_talking(a.port(), b.port(), a.port(), fake);
    live_channel talker_channel(a.port(), t.ticket);
    const auto w = fetch(b.port(), "POST", "/api/session?action=join").json();
    ASSERT_EQ(w["position"], 1) << w.dump();
    const std::string waiter_ticket = w["ticket"];
    live_channel waiter_channel(b.port(), waiter_ticket);
    ASSERT_TRUE(waiter_channel.wait([](const std::vector<json>& m, bool) { return newest_status(m).has_value(); }, 5s));
    ASSERT_GT(t.expires_unix_ms - unix_now_ms(), 1500) << "too slow a start: the session is almost over";

    if (outage == redis_outage::paused) redis.pause();
    else redis.kill();

    // Joins: 503 store_unavailable with Retry-After (a paused Redis costs the command's deadline).
    for (auto* broker : {&a, &b}) {
        const auto r = fetch(broker->port(), "POST", "/api/session?action=join");
        EXPECT_EQ(r.status, 503u) << broker->name() << ": " << r.body;
        EXPECT_EQ(r.json()["error"]["code"], "store_unavailable") << r.body;
        EXPECT_FALSE(r.header("retry-after").empty());
    }
    for (auto* broker : {&a, &b}) {
        ASSERT_TRUE(broker->wait_log("joins answer 503 until it is back", 5s)) << broker->output();
        const auto health = fetch(broker->port(), "GET", "/api/health");
        EXPECT_EQ(health.status, 200u);
        EXPECT_EQ(health.json()["status"], "degraded") << health.body;
        EXPECT_NE(fetch(broker->port(), "GET", "/metrics").body.find("\nvoice_broker_store_up 0\n"), std::string::npos);
    }

    // The talking visitor's session still ends at its deadline, and the call is hung up.
    ASSERT_TRUE(fake.wait_hangups(1, std::chrono::milliseconds{std::max<std::int64_t>(0, t.expires_unix_ms - unix_now_ms()) + 5000}))
        << a.output();
    const auto hung_up_at = hang_up_time(fake, t.call_id);
    ASSERT_TRUE(hung_up_at);
    EXPECT_GE(*hung_up_at, t.expires_unix_ms - 100) << "hung up before the deadline";
    EXPECT_LE(*hung_up_at, t.expires_unix_ms + 1000) << "hung up more than 1 s after the deadline";
    ASSERT_TRUE(talker_channel.wait([](const std::vector<json>& m, bool) { return has_type(m, "ended"); }, 5s));

    if (outage == redis_outage::paused) redis.resume();
    else redis.restart();

    // Everything comes back without a restart.
    for (auto* broker : {&a, &b}) {
        ASSERT_TRUE(broker->wait_log("connected as instance", 10s, 2)) << broker->output();
        EXPECT_TRUE(eventually([&] { return fetch(broker->port(), "GET", "/api/health").json()["status"] == "ok"; }, 5s));
        EXPECT_NE(fetch(broker->port(), "GET", "/metrics").body.find("\nvoice_broker_store_up 1\n"), std::string::npos);
    }
    if (outage == redis_outage::killed_without_aof) {
        // Redis lost everything: the waiter's place is gone (nothing kept it), honestly so.
        EXPECT_EQ(fetch(b.port(), "GET", "/api/session?action=status", {{"X-Session-Ticket", waiter_ticket}}).status, 404u);
        // New visitors are served.  Their entries must never be mistaken for the lost ones that
        // pages still hold channels for (entry ids are not reused): the waiter's channel hears
        // nothing of them, not even when the second newcomer is admitted.
        const auto before = waiter_channel.messages().size();
        const auto fresh = fetch(a.port(), "POST", "/api/session?action=join").json();
        EXPECT_EQ(fresh["state"], "active") << fresh.dump();
        const auto second = fetch(b.port(), "POST", "/api/session?action=join").json();
        ASSERT_EQ(second["position"], 1) << second.dump();
        live_channel second_channel(b.port(), second["ticket"]);
        ASSERT_TRUE(second_channel.wait([](const std::vector<json>& m, bool) { return newest_status(m).has_value(); }, 5s));
        EXPECT_EQ(fetch(a.port(), "POST", "/api/session?action=leave", {{"X-Session-Ticket", fresh["ticket"]}}).status, 200u);
        ASSERT_TRUE(second_channel.wait([](const std::vector<json>& m, bool) {
            const auto s = newest_status(m);
            return s && (*s)["state"] == "active";
        }, 5s));
        const auto after = waiter_channel.messages();
        for (auto i = before; i < after.size(); ++i) ADD_FAILURE() << "the lost waiter's channel was pushed " << after[i].dump();
    } else {
        // The waiter's page gets a fresh status after the resync: the slot is now theirs.
        EXPECT_TRUE(waiter_channel.wait([](const std::vector<json>& m, bool) {
            const auto s = newest_status(m);
            return s && (*s)["state"] == "active";
        }, 10s)) << (waiter_channel.last_status() ? waiter_channel.last_status()->dump() : "no status") << b.output();
        const auto next = fetch(a.port(), "POST", "/api/session?action=join").json();
        EXPECT_EQ(next["position"], 1) << next.dump();
    }
    // Whatever happened, the waiter's channel never carried another visitor's ticket.
    for (const auto& m : waiter_channel.messages()) {
        if (m.contains("ticket")) {
            EXPECT_EQ(m["ticket"], waiter_ticket) << m.dump();
        }
    }
}

INSTANTIATE_TEST_SUITE_P(outages, redis_cluster_outage,
                         ::testing::Values(redis_outage::killed_without_aof, redis_outage::killed_with_aof, redis_outage::paused),
                         [](const auto& info) { return to_string(info.param); });

}  // namespace
}  // namespace voice_broker::testing
