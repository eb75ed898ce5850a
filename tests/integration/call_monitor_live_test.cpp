// session_calls / call_monitor driven by a real conversation: the fake OpenAI plays its script on
// a call, a sideband_client carries the events, and a small shell here does what the session
// service does (src/cost_guard.cpp): feed events, carry out actions, arm one timer at the next
// deadline.  Second-scale durations; every wait ends on an event or a bounded timeout.
#include "fake_openai_server.hpp"

#include "voice_broker/session_calls.hpp"
#include "voice_broker/sideband_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <gtest/gtest.h>

#include <condition_variable>
#include <ctime>
#include <future>
#include <map>
#include <mutex>
#include <thread>

using namespace voice_broker;
using namespace voice_broker::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace net = boost::asio;
using kind = monitor_action::kind;

namespace {

call_monitor_settings monitor_settings() {
    call_monitor_settings s;
    s.model = "gpt-realtime";
    s.instructions = "You are a friendly voice assistant. Keep answers short.";
    s.voice = "marin";
    s.transcription_model = "gpt-4o-mini-transcribe";
    s.wrap_up_before = 0s;
    s.wrap_up_en = "The session is about to end. Finish your thought and say goodbye.";
    s.wrap_up_ru = "Время почти истекло. Закончите мысль и попрощайтесь.";
    s.silence_timeout = 0s;
    s.call_lost_grace = 1s;
    s.first_reconnect_delay = 50ms;
    return s;
}

// The shell around one session's calls, as the session service will be: one strand, one timer.
class watched_session {
public:
    struct record {
        std::chrono::steady_clock::time_point at;
        session_call_action what;
    };

    watched_session(const std::string& base_url, call_monitor_settings settings, std::chrono::steady_clock::time_point end,
                    call_monitor::language lang = call_monitor::language::en)
        : guard_(net::make_work_guard(io_)),
          strand_(net::make_strand(io_)),
          timer_(strand_),
          calls_(std::move(settings), price_table::defaults(), end, lang) {
        sideband_settings s;
        s.base_url = base_url;
        s.api_key = fake_openai_key;
        s.connect_timeout = 5s;
        auto made = sideband_client::create(io_, s);
        client_ = std::get<std::shared_ptr<sideband_client>>(made);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~watched_session() {
        net::post(strand_, [this] {
            calls_.stop();  // decides nothing more, so no timer is armed again
            calls_.take_actions();
            for (auto& [id, c] : connections_) c->close();
            timer_.cancel();
        });
        guard_.reset();
        thread_.join();  // ends once every sideband has ended
    }

    void add_call(const std::string& call_id) {
        net::post(strand_, [this, call_id] {
            if (calls_.add_call(call_id, std::chrono::steady_clock::now())) open(call_id);
            after_change();
        });
    }

    // Waits until `n` actions of kind `k` were recorded.
    bool wait_for(kind k, std::size_t n = 1, std::chrono::milliseconds timeout = 10s) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return count_locked(k) >= n; });
    }
    std::vector<record> records() {
        std::lock_guard lock(mutex_);
        return records_;
    }
    std::optional<record> first(kind k) {
        std::lock_guard lock(mutex_);
        for (const auto& r : records_) {
            if (r.what.action.what == k) return r;
        }
        return std::nullopt;
    }
    std::size_t count(kind k) {
        std::lock_guard lock(mutex_);
        return count_locked(k);
    }
    std::chrono::steady_clock::time_point first_open() {
        std::lock_guard lock(mutex_);
        return opened_.empty() ? std::chrono::steady_clock::time_point{} : opened_.front();
    }
    // Runs `f(calls)` on the strand and waits for it.
    template <class F>
    auto inspect(F f) {
        std::promise<decltype(f(calls_))> done;
        net::post(strand_, [&] { done.set_value(f(calls_)); });
        return done.get_future().get();
    }

private:
    void open(const std::string& call_id) {
        sideband_handlers h;
        h.on_open = [this, call_id] {
            {
                std::lock_guard lock(mutex_);
                opened_.push_back(std::chrono::steady_clock::now());
            }
            calls_.sideband_opened(call_id, std::chrono::steady_clock::now());
            after_change();
        };
        h.on_event = [this, call_id](json event) {
            calls_.on_event(call_id, event, std::chrono::steady_clock::now());
            after_change();
        };
        h.on_end = [this, call_id](sideband_end_info why) {
            calls_.sideband_ended(call_id, why, std::chrono::steady_clock::now());
            after_change();
        };
        connections_[call_id] = client_->open(call_id, strand_, std::move(h));
    }

    // Carries out what the calls decided, then re-arms the one timer.
    void after_change() {
        for (auto& a : calls_.take_actions()) {
            switch (a.action.what) {
            case kind::send:
                if (auto it = connections_.find(a.call_id); it != connections_.end()) it->second->send(a.action.event);
                break;
            case kind::reconnect_sideband:
                open(a.call_id);
                break;
            case kind::close_sideband:
                if (auto it = connections_.find(a.call_id); it != connections_.end()) it->second->close();
                break;
            default:
                break;
            }
            std::lock_guard lock(mutex_);
            records_.push_back({std::chrono::steady_clock::now(), std::move(a)});
            changed_.notify_all();
        }
        const auto next = calls_.next_deadline();
        timer_.cancel();
        if (!next) return;
        timer_.expires_at(*next);
        timer_.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            calls_.on_timer(std::chrono::steady_clock::now());
            after_change();
        });
    }

    std::size_t count_locked(kind k) const {
        std::size_t n = 0;
        for (const auto& r : records_) n += r.what.action.what == k;
        return n;
    }

    net::io_context io_;
    net::executor_work_guard<net::io_context::executor_type> guard_;
    net::strand<net::io_context::executor_type> strand_;
    net::steady_timer timer_;
    std::shared_ptr<sideband_client> client_;
    session_calls calls_;
    std::map<std::string, std::shared_ptr<sideband_connection>> connections_;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<record> records_;
    std::vector<std::chrono::steady_clock::time_point> opened_;
};

// Milliseconds between two ISO 8601 instants of the fake ("2026-12-01T15:12:35.123Z").
long long iso_ms(const std::string& iso) {
    std::tm tm{};
    const char* rest = ::strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    long long ms = static_cast<long long>(::timegm(&tm)) * 1000;
    if (rest && *rest == '.') ms += std::stoll(std::string(rest + 1, 3));
    return ms;
}

}  // namespace

TEST(call_monitor_live, the_pages_session_update_is_reverted_within_one_second) {
    fake_openai_server fake({"--script", R"({"mode":"page-session-update","pageUpdateDelayMs":300})"});
    // The call starts with the server's session, as relay mode opens it (and token mode's key).
    const auto call = fake.open_call({{"type", "realtime"},
                                      {"model", "gpt-realtime"},
                                      {"instructions", monitor_settings().instructions},
                                      {"audio", {{"output", {{"voice", "marin"}}}}}});
    watched_session session(fake.url(), monitor_settings(), std::chrono::steady_clock::now() + 60s);
    session.add_call(call);
    ASSERT_TRUE(session.wait_for(kind::session_reverted));
    const auto reverted = session.first(kind::session_reverted);
    EXPECT_EQ(reverted->what.action.fields,
              (std::vector<std::string>{"instructions", "voice", "tools", "max_output_tokens"}));
    // The fake's record: our sync on open, the page's update, then our revert.
    ASSERT_TRUE(fake.wait("sessionUpdates=3"));
    const auto state = fake.call(call);
    const auto& updates = state["sessionUpdates"];
    long long page_at = -1;
    long long revert_at = -1;
    for (const auto& u : updates) {
        if (u["via"] == "datachannel" && page_at < 0) page_at = iso_ms(u["at"]);
        else if (u["via"] == "sideband" && page_at >= 0 && revert_at < 0 && u["ok"] == true) revert_at = iso_ms(u["at"]);
    }
    ASSERT_GE(page_at, 0) << updates.dump();
    ASSERT_GE(revert_at, 0) << updates.dump();
    EXPECT_LT(revert_at - page_at, 1000) << "reverted within one second";
    const auto& s = state["session"];
    EXPECT_EQ(s["instructions"], monitor_settings().instructions);
    EXPECT_EQ(s["audio"]["output"]["voice"], "marin");
    EXPECT_EQ(s["tools"], json::array());
    EXPECT_EQ(s["max_output_tokens"], "inf");
    EXPECT_EQ(session.count(kind::session_reverted), 1u) << "our own update is not taken for the page's";
}

TEST(call_monitor_live, a_silent_call_is_idle_at_the_timeout) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    auto settings = monitor_settings();
    settings.silence_timeout = 2s;
    watched_session session(fake.url(), settings, std::chrono::steady_clock::now() + 60s);
    session.add_call(fake.open_call());
    ASSERT_TRUE(session.wait_for(kind::idle, 1, 6s));
    const auto idle = session.first(kind::idle);
    const auto after = idle->at - session.first_open();
    EXPECT_GE(after, 2s);
    EXPECT_LT(after, 3500ms);
    ASSERT_TRUE(session.wait_for(kind::close_sideband)) << "the session's sidebands are closed";
    EXPECT_TRUE(fake.wait("sidebandsClosed=1"));
}

TEST(call_monitor_live, a_conversation_keeps_a_call_from_being_idle) {
    fake_openai_server fake({"--script", R"({"mode":"chatty","chattyIntervalMs":400,"speechMs":100})"});
    auto settings = monitor_settings();
    settings.silence_timeout = 1s;
    watched_session session(fake.url(), settings, std::chrono::steady_clock::now() + 60s);
    session.add_call(fake.open_call());
    ASSERT_TRUE(fake.wait("responses=5", 10s));
    EXPECT_EQ(session.count(kind::idle), 0u);
}

class wrap_up_live : public ::testing::TestWithParam<call_monitor::language> {};

TEST_P(wrap_up_live, arrives_once_before_the_end_and_reaches_the_transcript) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    const auto call = fake.open_call();
    auto settings = monitor_settings();
    settings.wrap_up_before = 3s;
    const auto end = std::chrono::steady_clock::now() + 4s;
    watched_session session(fake.url(), settings, end, GetParam());
    session.add_call(call);
    ASSERT_TRUE(session.wait_for(kind::wrap_up_sent, 1, 5s));
    const auto sent = session.first(kind::wrap_up_sent);
    EXPECT_GE(sent->at, end - 3s);
    EXPECT_LT(sent->at, end - 2s);
    ASSERT_TRUE(fake.wait("responses=1"));
    const auto state = fake.call(call);
    ASSERT_EQ(state["responses"].size(), 1u);
    const auto& response = state["responses"][0];
    ASSERT_FALSE(response["wrapUp"].is_null()) << response.dump();
    const bool ru = GetParam() == call_monitor::language::ru;
    EXPECT_EQ(response["wrapUp"]["lang"], ru ? "ru" : "en");
    EXPECT_EQ(response["wrapUp"]["text"], ru ? settings.wrap_up_ru : settings.wrap_up_en);
    const auto transcript = response["transcript"].get<std::string>();
    EXPECT_NE(transcript.find(ru ? "До свидания" : "Goodbye"), std::string::npos) << transcript;
    const auto items = state["items"];
    int system_items = 0;
    for (const auto& i : items) system_items += i.value("role", "") == "system";
    EXPECT_EQ(system_items, 1);
    // Until the session's end, nothing more.
    EXPECT_FALSE(fake.wait("responses=2", std::chrono::duration_cast<std::chrono::milliseconds>(
                                              end - std::chrono::steady_clock::now() + 300ms)));
    EXPECT_EQ(session.count(kind::wrap_up_sent), 1u);
}

INSTANTIATE_TEST_SUITE_P(languages, wrap_up_live,
                         ::testing::Values(call_monitor::language::en, call_monitor::language::ru),
                         [](const auto& info) { return info.param == call_monitor::language::en ? "en" : "ru"; });

TEST(call_monitor_live, usage_adds_up_to_the_exact_dollars) {
    fake_openai_server fake({"--script", R"({"mode":"chatty","chattyIntervalMs":150,"speechMs":30})"});
    const auto call = fake.open_call();
    watched_session session(fake.url(), monitor_settings(), std::chrono::steady_clock::now() + 60s);
    session.add_call(call);
    ASSERT_TRUE(session.wait_for(kind::usage, 5));
    // The call ends on OpenAI's side: the sideband closes after every event already sent.
    fake.control("calls/" + call + "/end", {{"sideband", "close"}});
    ASSERT_TRUE(session.wait_for(kind::call_lost, 1, 5s));
    const auto usage = fake.call(call)["usage"];
    const auto responses = usage["responses"].get<std::int64_t>();
    ASSERT_GE(responses, 5);
    // The fake's sums, priced by hand at gpt-realtime's $/1M (= picodollars per token x 10^6).
    const std::int64_t expected = (usage["input_text_tokens"].get<std::int64_t>() - usage["cached_text_tokens"].get<std::int64_t>()) * 4'000'000 +
                                  usage["cached_text_tokens"].get<std::int64_t>() * 400'000 +
                                  (usage["input_audio_tokens"].get<std::int64_t>() - usage["cached_audio_tokens"].get<std::int64_t>()) * 32'000'000 +
                                  usage["cached_audio_tokens"].get<std::int64_t>() * 400'000 +
                                  usage["output_text_tokens"].get<std::int64_t>() * 16'000'000 +
                                  usage["output_audio_tokens"].get<std::int64_t>() * 64'000'000;
    EXPECT_EQ(expected, responses * 4'793'600'000LL) << "the fake's default usage is $0.0047936 a response";
    std::int64_t from_actions = 0;
    std::size_t usage_actions = 0;
    for (const auto& r : session.records()) {
        if (r.what.action.what == kind::usage) {
            from_actions += r.what.action.cost.picodollars;
            ++usage_actions;
        }
    }
    EXPECT_EQ(usage_actions, static_cast<std::size_t>(responses)) << "every response.done was seen";
    EXPECT_EQ(from_actions, expected);
    EXPECT_EQ(session.inspect([](session_calls& c) { return c.cost().picodollars; }), expected);
    EXPECT_TRUE(session.inspect([](session_calls& c) { return c.usage_complete(); }));
}

TEST(call_monitor_live, a_call_that_ends_upstream_ends_the_session_after_the_grace) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    const auto call = fake.open_call();
    watched_session session(fake.url(), monitor_settings(), std::chrono::steady_clock::now() + 60s);
    session.add_call(call);
    ASSERT_TRUE(fake.wait("sidebandsOpen=1"));
    const auto ended_at = std::chrono::steady_clock::now();
    fake.control("calls/" + call + "/end", {{"sideband", "close"}});
    ASSERT_TRUE(session.wait_for(kind::call_lost, 1, 5s));
    EXPECT_GE(session.first(kind::call_lost)->at - ended_at, 1s) << "CALL_LOST_GRACE_SECONDS=1";
}

TEST(call_monitor_live, a_new_call_within_the_grace_keeps_the_session) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    auto settings = monitor_settings();
    settings.call_lost_grace = 2s;
    const auto first = fake.open_call();
    watched_session session(fake.url(), settings, std::chrono::steady_clock::now() + 60s);
    session.add_call(first);
    ASSERT_TRUE(fake.wait("sidebandsOpen=1"));
    fake.control("calls/" + first + "/end", {{"sideband", "drop"}});  // even a drop: the reconnect finds 404
    const auto second = fake.open_call();  // the page reloads and calls again
    session.add_call(second);
    ASSERT_TRUE(fake.wait("sidebandsOpen=1&sidebands=2"));
    EXPECT_FALSE(session.wait_for(kind::call_lost, 1, 3s));
    EXPECT_FALSE(session.inspect([](session_calls& c) { return c.stopped(); }));
}

TEST(call_monitor_live, a_sideband_that_keeps_failing_is_given_up_and_changes_nothing_else) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    fake.fault({{"route", "sideband"}, {"mode", "500"}});
    const auto call = fake.open_call();
    auto settings = monitor_settings();
    settings.silence_timeout = 1s;
    watched_session session(fake.url(), settings, std::chrono::steady_clock::now() + 60s);
    session.add_call(call);
    ASSERT_TRUE(session.wait_for(kind::sideband_failed, 1, 5s));
    EXPECT_EQ(session.count(kind::reconnect_sideband), 3u);
    EXPECT_EQ(fake.count("sideband"), 4) << "the first attempt and three reconnects";
    EXPECT_NE(session.first(kind::sideband_failed)->what.action.detail.find("500"), std::string::npos);
    // Nothing else happened: the call lives on, the session is not ended, not even as idle.
    EXPECT_FALSE(session.wait_for(kind::idle, 1, 1500ms));
    EXPECT_EQ(session.count(kind::call_lost), 0u);
    EXPECT_TRUE(fake.call(call)["ended"].is_null());
    EXPECT_EQ(fake.count("hangup"), 0);
    EXPECT_FALSE(session.inspect([](session_calls& c) { return c.usage_complete(); })) << "the estimate covers it";
}

TEST(call_monitor_live, a_dropped_sideband_is_reopened) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    fake.fault({{"route", "sideband"}, {"mode", "drop-after"}, {"afterMs", 300}, {"count", 1}});
    const auto call = fake.open_call();
    watched_session session(fake.url(), monitor_settings(), std::chrono::steady_clock::now() + 60s);
    session.add_call(call);
    ASSERT_TRUE(session.wait_for(kind::reconnect_sideband));
    ASSERT_TRUE(fake.wait("sidebands=2&sidebandsOpen=1"));
    EXPECT_EQ(session.count(kind::sideband_failed), 0u);
    EXPECT_EQ(session.count(kind::call_lost), 0u);
}
