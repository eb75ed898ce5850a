// The cost guard in the real binary, against the fake OpenAI on loopback: a spent budget holds the
// queue and survives a restart, an empty OpenAI account pauses admissions, an orphaned call is
// hung up, a refused sideband changes nothing else, a silent call ends as idle and passes its slot
// on, and the wrap-up reaches the fake's transcript once.  In redis mode, two processes share one
// budget through the store: one's lease and spend hold the other's admissions and joins.  (openai_cost_test.cpp covers the
// openai_client alone, call_monitor_live_test.cpp the monitors alone; this file, the service.)
// Second-scale durations from the environment; every wait ends on an event (a push, a log line,
// the fake's own wait) or a bounded timeout.
#include "fake_openai_server.hpp"
#include "redis_test_server.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>

using namespace voice_broker::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

// The real binary in `dir` (DATA_DIR and a tiny site in it), stopped with SIGTERM at the end.
class broker {
public:
    broker(const temp_dir& dir, settings_map env) {
        std::filesystem::create_directories(dir.path() / "site");
        dir.write("site/index.html", "<!doctype html><title>v</title>");
        env["STATIC_DIR"] = (dir.path() / "site").string();
        env["PORT"] = "0";
        env["DATA_DIR"] = (dir.path() / "data").string();
        env.try_emplace("MAX_TICKETS_PER_ADDRESS", "0");
        env.try_emplace("JOIN_RATE_PER_ADDRESS", "0");
        env.try_emplace("MAX_CONCURRENT_USERS", "1");
        env.try_emplace("WARNING_SECONDS", "");
        env.try_emplace("SHUTDOWN_GRACE_SECONDS", "2");
        process_ = std::make_unique<subprocess>(voice_broker_binary(), std::vector<std::string>{}, env, dir.path());
        const auto started = process_->wait_for_output("listening on", 20s);
        if (!started) throw std::runtime_error("voice-broker did not start: " + process_->output());
        std::smatch m;
        if (!std::regex_search(*started, m, std::regex(R"(listening on http://[0-9.]+:([0-9]+))"))) throw std::runtime_error(*started);
        port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
    }
    ~broker() {
        if (!stopped_) stop();
    }
    std::optional<int> stop() {
        stopped_ = true;
        process_->signal(SIGTERM);
        return process_->wait_exit(15s);
    }
    std::uint16_t port() const { return port_; }
    bool logged(const std::string& needle, std::chrono::milliseconds timeout = 5s) {
        return process_->wait_for_output(needle, timeout).has_value();
    }
    std::string output() const { return process_->output(); }

    response join(const header_list& headers = {}) const { return fetch(port_, "POST", "/api/session?action=join", headers); }
    std::string join_ticket() const {
        const auto r = join();
        if (r.status != 200) throw std::runtime_error("join: " + std::to_string(r.status) + " " + r.body);
        return r.json()["ticket"].get<std::string>();
    }
    json status(const std::string& ticket) const {
        return fetch(port_, "GET", "/api/session?action=status", {{"X-Session-Ticket", ticket}}).json();
    }
    json stats() const { return fetch(port_, "GET", "/api/session?action=stats").json(); }
    std::string metrics() const { return fetch(port_, "GET", "/metrics").body; }
    response connect(const std::string& ticket, const std::string& language = "en") const {
        return fetch(port_, "POST", "/api/session?action=connect",
                     {{"X-Session-Ticket", ticket}, {"Content-Type", "application/sdp"}, {"X-Visitor-Language", language}},
                     dummy_sdp_offer);
    }
    std::unique_ptr<ws_client> channel(const std::string& ticket) const {
        return std::make_unique<ws_client>(port_, "/api/session/ws?ticket=" + ticket);
    }

private:
    std::unique_ptr<subprocess> process_;
    std::uint16_t port_ = 0;
    bool stopped_ = false;
};

settings_map upstream_env(const fake_openai_server& fake, settings_map extra) {
    extra.try_emplace("OPENAI_API_KEY", fake_openai_key);
    extra.try_emplace("OPENAI_BASE_URL", fake.url());
    extra.try_emplace("OPENAI_TIMEOUT_SECONDS", "5");
    return extra;
}

// The next status push that satisfies `want` (pushes are coalesced; any number may come first).
std::optional<json> status_push(ws_client& ws, const std::function<bool(const json&)>& want, std::chrono::milliseconds timeout) {
    const auto until = steady::now() + timeout;
    while (steady::now() < until) {
        auto next = ws.next(std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now()));
        if (!next) return std::nullopt;
        if ((*next)["type"] == "status" && want(*next)) return next;
    }
    return std::nullopt;
}

bool paused(const json& status, const std::string& reason) {
    return status.contains("admissionPaused") && status["admissionPaused"]["reason"] == reason;
}

// "2026-12-02T00:00:00+01:00" -> the UTC instant; "2026-12-01T23:00:00.000Z" -> the same.
std::time_t parse_instant(const std::string& text) {
    std::smatch m;
    static const std::regex re(R"(^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|([+-])(\d\d):(\d\d))$)");
    if (!std::regex_match(text, m, re)) throw std::runtime_error("not an ISO 8601 instant: " + text);
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    tm.tm_hour = std::stoi(m[4]);
    tm.tm_min = std::stoi(m[5]);
    tm.tm_sec = std::stoi(m[6]);
    auto t = timegm(&tm);
    if (m[7] != "Z") {
        const auto offset = std::stoi(m[9]) * 3600 + std::stoi(m[10]) * 60;
        t += m[8] == "+" ? -offset : offset;
    }
    return t;
}

std::string only_call_id(const fake_openai_server& fake) {
    const auto calls = fake.state()["calls"];
    if (calls.size() != 1) throw std::runtime_error("expected one call at the fake: " + calls.dump());
    return calls[0]["id"].get<std::string>();
}

}  // namespace

// ---- budgets ----------------------------------------------------------------------------------

// One session is 2 s at $0.60/min = $0.02; the day's budget is $0.024.  The first session fits,
// its end spends $0.02 (83 %), and then one more session no longer fits: nobody is admitted.
TEST(cost_guard_binary, a_spent_budget_holds_the_queue_answers_join_with_the_reset_and_survives_a_restart) {
    temp_dir dir;
    const settings_map env{{"SESSION_DURATION_SECONDS", "2"},
                           {"COST_PER_MINUTE_USD", "0.6"},
                           {"DAILY_BUDGET_USD", "0.024"},
                           {"BUDGET_TIMEZONE", "Europe/Berlin"}};
    std::string waiting;
    {
        broker b(dir, env);
        const auto talking = b.join_ticket();
        waiting = b.join_ticket();
        auto talking_ws = b.channel(talking);
        auto waiting_ws = b.channel(waiting);
        ASSERT_EQ(b.status(waiting)["state"], "queued");
        EXPECT_FALSE(b.status(waiting).contains("admissionPaused")) << "the budget is not spent yet";

        const auto ended = talking_ws->next_of_type("ended", 8s);
        ASSERT_TRUE(ended) << b.output();
        EXPECT_EQ((*ended)["reason"], "expired");
        // The slot is free, but the queue stays: its head hears why, and until when.
        const auto held = status_push(*waiting_ws, [](const json& s) { return paused(s, "budget_exhausted"); }, 5s);
        ASSERT_TRUE(held) << b.output();
        EXPECT_EQ((*held)["state"], "queued");
        EXPECT_EQ((*held)["position"], 1);
        const auto& pause = (*held)["admissionPaused"];
        EXPECT_EQ(pause["timeZone"], "Europe/Berlin");
        const auto local = pause["resetsAtLocal"].get<std::string>();
        EXPECT_TRUE(std::regex_match(local, std::regex(R"(\d{4}-\d\d-\d\dT00:00:00\+0[12]:00)"))) << "local midnight: " << local;
        EXPECT_EQ(parse_instant(pause["resetsAt"].get<std::string>()), parse_instant(local));
        ASSERT_TRUE(b.logged("80 % of the day budget spent")) << b.output();
        ASSERT_TRUE(std::filesystem::exists(dir.path() / "data" / "budget.json")) << "saved at once on a crossing";

        // A new visitor is told, with the time it starts again.
        const auto refused = b.join();
        ASSERT_EQ(refused.status, 503u) << refused.body;
        const auto error = refused.json()["error"];
        EXPECT_EQ(error["code"], "budget_exhausted");
        EXPECT_EQ(error["period"], "day");
        EXPECT_EQ(error["timeZone"], "Europe/Berlin");
        EXPECT_EQ(error["resetsAtLocal"], local);
        EXPECT_EQ(error["resetsAt"], pause["resetsAt"]);
        EXPECT_NE(error["message"].get<std::string>().find("00:00 (Europe/Berlin)"), std::string::npos) << error.dump();
        const auto retry_after = std::stoll(refused.header("retry-after"));
        const auto until_reset = parse_instant(local) - std::time(nullptr);
        EXPECT_NEAR(static_cast<double>(retry_after), static_cast<double>(until_reset), 5.0);
        EXPECT_TRUE(refused.header("set-cookie").empty()) << "no place was made";
        // The visitor who waits keeps the place and gets it back on join.
        const auto again = b.join({{"X-Session-Ticket", waiting}});
        EXPECT_EQ(again.status, 200u) << again.body;
        EXPECT_TRUE(paused(again.json(), "budget_exhausted")) << again.body;

        const auto cost = b.stats()["cost"];
        EXPECT_EQ(cost["timeZone"], "Europe/Berlin");
        EXPECT_GE(cost["day"]["estimatedUsd"].get<double>(), 0.02);
        EXPECT_LT(cost["day"]["estimatedUsd"].get<double>(), 0.03) << "one 2 s session, give or take a late timer";
        EXPECT_DOUBLE_EQ(cost["day"]["budgetUsd"].get<double>(), 0.024);
        EXPECT_EQ(cost["budgetExhausted"], true);
        EXPECT_NE(b.metrics().find("voice_broker_budget_exhausted 1"), std::string::npos);
        EXPECT_EQ(b.stop(), 0) << b.output();
    }
    // The spend is in DATA_DIR/budget.json: the next process holds the queue just the same.
    broker b(dir, env);
    const auto s = b.status(waiting);
    EXPECT_EQ(s["state"], "queued") << s.dump();
    EXPECT_TRUE(paused(s, "budget_exhausted")) << s.dump();
    const auto refused = b.join();
    EXPECT_EQ(refused.status, 503u) << refused.body;
    EXPECT_EQ(refused.json()["error"]["code"], "budget_exhausted");
    EXPECT_FALSE(refused.header("retry-after").empty());
    EXPECT_GE(b.stats()["cost"]["day"]["estimatedUsd"].get<double>(), 0.02);
}

// Redis mode: two processes, one real Redis, one budget.  One session is 2 s at $0.60/min = $0.02;
// the day's budget is $0.024; two slots, so only the budget can hold anyone.
TEST(cost_guard_binary, in_redis_mode_two_instances_share_one_budget_and_it_survives_restarting_both) {
    redis_test_server redis;
    temp_dir dir_a, dir_b;
    const auto env = [&](const std::string& instance) {
        return settings_map{{"STATE_STORE", "redis"},
                            {"REDIS_URL", "redis://127.0.0.1:" + std::to_string(redis.port()) + "/0"},
                            {"REDIS_KEY_PREFIX", "budget-bin-" + std::to_string(::getpid())},
                            {"INSTANCE_ID", instance},
                            {"MAX_CONCURRENT_USERS", "2"},
                            {"SESSION_DURATION_SECONDS", "2"},
                            {"COST_PER_MINUTE_USD", "0.6"},
                            {"DAILY_BUDGET_USD", "0.024"},
                            {"BUDGET_TIMEZONE", "Europe/Berlin"}};
    };
    std::string waiting;
    {
        broker a(dir_a, env("vb-a"));
        broker b(dir_b, env("vb-b"));
        const auto talking = a.join_ticket();
        auto talking_ws = a.channel(talking);
        ASSERT_EQ(a.status(talking)["state"], "active");
        // A slot is free, but a's session is committed: $0.02 + $0.02 > $0.024, on the other instance too.
        waiting = b.join_ticket();
        auto waiting_ws = b.channel(waiting);
        EXPECT_EQ(b.status(waiting)["state"], "queued");

        ASSERT_TRUE(talking_ws->next_of_type("ended", 8s)) << a.output();
        // Its end charged its minutes in Redis: the other instance's stats show them, and its new
        // visitors are refused until the reset.  Nobody was admitted.
        const auto cost = b.stats()["cost"];
        EXPECT_GE(cost["day"]["estimatedUsd"].get<double>(), 0.02) << cost.dump();
        EXPECT_LT(cost["day"]["estimatedUsd"].get<double>(), 0.03) << cost.dump();
        EXPECT_DOUBLE_EQ(cost["day"]["budgetUsd"].get<double>(), 0.024);
        EXPECT_EQ(a.stats()["cost"]["day"], cost["day"]) << "every instance shows the same shared spend";
        for (const broker* instance : {&a, &b}) {
            EXPECT_EQ(instance->stats()["cost"]["budgetExhausted"], true) << "the shared spend leaves no room for a session";
            const auto refused = instance->join();
            ASSERT_EQ(refused.status, 503u) << refused.body;
            EXPECT_EQ(refused.json()["error"]["code"], "budget_exhausted");
            EXPECT_FALSE(refused.header("retry-after").empty());
        }
        EXPECT_EQ(b.status(waiting)["state"], "queued");
        EXPECT_FALSE(std::filesystem::exists(dir_a.path() / "data" / "budget.json")) << "in redis mode the spend is in Redis";
        EXPECT_EQ(a.stop(), 0) << a.output();
        EXPECT_EQ(b.stop(), 0) << b.output();
    }
    // Both processes are gone; the spend is in Redis, so two new ones hold the budget just the same.
    broker a(dir_a, env("vb-a"));
    broker b(dir_b, env("vb-b"));
    const auto refused = b.join();
    EXPECT_EQ(refused.status, 503u) << refused.body;
    EXPECT_EQ(refused.json()["error"]["code"], "budget_exhausted");
    EXPECT_GE(a.stats()["cost"]["day"]["estimatedUsd"].get<double>(), 0.02);
    EXPECT_EQ(a.status(waiting)["state"], "queued");
}

// ---- an empty OpenAI account --------------------------------------------------------------------

TEST(cost_guard_binary, insufficient_quota_is_not_retried_and_pauses_admissions_for_the_quota_pause) {
    fake_openai_server fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "insufficient_quota"}, {"shouldRetry", true}, {"count", 1}});
    temp_dir dir;
    broker b(dir, upstream_env(fake, {{"QUOTA_PAUSE_SECONDS", "4"}, {"SESSION_DURATION_SECONDS", "60"}}));
    const auto talking = b.join_ticket();
    const auto waiting = b.join_ticket();
    auto talking_ws = b.channel(talking);
    auto waiting_ws = b.channel(waiting);

    const auto minted = fetch(b.port(), "POST", "/api/session?action=token", {{"X-Session-Ticket", talking}});
    const auto paused_at = steady::now();
    ASSERT_EQ(minted.status, 503u) << minted.body;
    EXPECT_EQ(minted.json()["error"]["code"], "upstream_quota");
    const auto retry = std::stoi(minted.header("retry-after"));
    EXPECT_GE(retry, 1);
    EXPECT_LE(retry, 4);
    EXPECT_EQ(fake.count("client_secrets"), 1) << "an empty account is not asked again, even when it says retry";

    const auto held = status_push(*waiting_ws, [](const json& s) { return paused(s, "upstream_quota"); }, 3s);
    ASSERT_TRUE(held) << b.output();
    EXPECT_FALSE((*held)["admissionPaused"]["resetsAt"].get<std::string>().empty());
    const auto refused = b.join();
    ASSERT_EQ(refused.status, 503u) << refused.body;
    EXPECT_EQ(refused.json()["error"]["code"], "upstream_quota");
    EXPECT_FALSE(refused.header("retry-after").empty());
    // A second key during the pause is not even asked for.
    EXPECT_EQ(fetch(b.port(), "POST", "/api/session?action=token", {{"X-Session-Ticket", talking}}).status, 503u);
    EXPECT_EQ(fake.count("client_secrets"), 1);

    // The talker leaves: the slot is free, but the pause holds the queue until it ends.
    fetch(b.port(), "POST", "/api/session?action=leave", {{"X-Session-Ticket", talking}});
    EXPECT_EQ(b.status(waiting)["state"], "queued");
    const auto admitted = status_push(*waiting_ws, [](const json& s) { return s["state"] == "active"; }, 8s);
    ASSERT_TRUE(admitted) << b.output();
    EXPECT_GE(steady::now() - paused_at, 3s) << "QUOTA_PAUSE_SECONDS=4";
    EXPECT_FALSE(admitted->contains("admissionPaused"));
    EXPECT_EQ(fetch(b.port(), "POST", "/api/session?action=token", {{"X-Session-Ticket", waiting}}).status, 200u);
    EXPECT_EQ(fake.count("client_secrets"), 2);
}

// ---- calls ----------------------------------------------------------------------------------------

TEST(cost_guard_binary, a_call_behind_a_refused_answer_is_hung_up_and_the_session_goes_on) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    fake.fault({{"route", "calls"}, {"mode", "bad-answer"}, {"variant", "not-sdp"}, {"count", 1}});
    temp_dir dir;
    broker b(dir, upstream_env(fake, {{"REALTIME_MODE", "relay"}, {"SESSION_DURATION_SECONDS", "60"}}));
    const auto ticket = b.join_ticket();
    const auto refused = b.connect(ticket);
    EXPECT_EQ(refused.status, 502u) << refused.body;
    ASSERT_TRUE(fake.wait("hangups=1")) << b.output();
    const auto orphan = only_call_id(fake);
    EXPECT_EQ(fake.call(orphan)["faultAnswer"], "not-sdp");
    EXPECT_EQ(fake.state()["hangups"][0], orphan);
    EXPECT_EQ(fake.count("calls"), 1) << "not retried";
    // The visitor may try again: the session is still theirs.
    EXPECT_EQ(b.status(ticket)["state"], "active");
    EXPECT_EQ(b.connect(ticket).status, 201u);
}

TEST(cost_guard_binary, a_refused_sideband_changes_nothing_else) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    fake.fault({{"route", "sideband"}, {"mode", "500"}});
    temp_dir dir;
    // With a working sideband this silent call would end as idle after 1 s.
    broker b(dir, upstream_env(fake, {{"REALTIME_MODE", "relay"}, {"SESSION_DURATION_SECONDS", "4"}, {"SILENCE_TIMEOUT_SECONDS", "1"},
                                      {"WRAP_UP_SECONDS", "2"}}));
    const auto ticket = b.join_ticket();
    auto ws = b.channel(ticket);
    const auto connected_at = steady::now();
    ASSERT_EQ(b.connect(ticket).status, 201u);
    ASSERT_TRUE(b.logged("the sideband of a call failed")) << b.output();
    const auto ended = ws->next_of_type("ended", 8s);
    ASSERT_TRUE(ended) << b.output();
    EXPECT_EQ((*ended)["reason"], "expired") << "not idle, not call_ended: the call went on to its time";
    EXPECT_GE(steady::now() - connected_at, 3s);
    ASSERT_TRUE(fake.wait("hangups=1")) << "hung up at the end as always";
    EXPECT_EQ(fake.state()["hangups"][0], only_call_id(fake));
    EXPECT_EQ(fake.state()["realtime"]["responses"], 0) << "no wrap-up could be sent";
    EXPECT_NE(b.metrics().find("voice_broker_sideband_failures_total 1"), std::string::npos) << b.metrics();
    EXPECT_GT(b.stats()["cost"]["day"]["estimatedUsd"].get<double>(), 0.0) << "the estimate prices the call";
}

TEST(cost_guard_binary, a_silent_call_ends_as_idle_and_the_next_visitor_is_admitted) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    temp_dir dir;
    broker b(dir, upstream_env(fake, {{"REALTIME_MODE", "relay"}, {"SESSION_DURATION_SECONDS", "60"}, {"SILENCE_TIMEOUT_SECONDS", "2"}}));
    const auto talking = b.join_ticket();
    const auto waiting = b.join_ticket();
    auto talking_ws = b.channel(talking);
    auto waiting_ws = b.channel(waiting);
    ASSERT_EQ(b.connect(talking).status, 201u);
    ASSERT_TRUE(fake.wait("sidebandsOpen=1")) << b.output();
    const auto watched_at = steady::now();
    const auto ended = talking_ws->next_of_type("ended", 8s);
    ASSERT_TRUE(ended) << b.output();
    EXPECT_EQ((*ended)["reason"], "idle");
    EXPECT_EQ((*ended)["silenceSeconds"], 2);
    EXPECT_GE(steady::now() - watched_at, 1500ms);
    const auto admitted = status_push(*waiting_ws, [](const json& s) { return s["state"] == "active"; }, 3s);
    ASSERT_TRUE(admitted) << "the slot passes on at once";
    ASSERT_TRUE(fake.wait("hangups=1"));
    EXPECT_EQ(fake.state()["hangups"][0], only_call_id(fake));
    EXPECT_TRUE(fake.wait("sidebandsClosed=1"));
    EXPECT_EQ(b.status(talking)["reason"], "idle");
}

TEST(cost_guard_binary, the_wrap_up_reaches_the_transcript_once_in_the_visitors_language) {
    fake_openai_server fake({"--script", R"({"mode":"silent"})"});
    temp_dir dir;
    broker b(dir, upstream_env(fake, {{"REALTIME_MODE", "relay"}, {"SESSION_DURATION_SECONDS", "5"}, {"WRAP_UP_SECONDS", "3"}}));
    const auto ticket = b.join_ticket();
    auto ws = b.channel(ticket);
    ASSERT_EQ(b.connect(ticket, "ru").status, 201u);
    ASSERT_TRUE(fake.wait("responses=1", 6s)) << b.output();
    const auto call = fake.call(only_call_id(fake));
    ASSERT_EQ(call["responses"].size(), 1u);
    const auto& response = call["responses"][0];
    ASSERT_FALSE(response["wrapUp"].is_null()) << response.dump();
    EXPECT_EQ(response["wrapUp"]["lang"], "ru");
    EXPECT_NE(response["transcript"].get<std::string>().find("До свидания"), std::string::npos) << response.dump();
    const auto ended = ws->next_of_type("ended", 6s);
    ASSERT_TRUE(ended);
    EXPECT_EQ((*ended)["reason"], "expired");
    EXPECT_EQ(fake.state()["realtime"]["responses"], 1) << "once";
    EXPECT_NE(b.metrics().find("voice_broker_wrap_ups_sent_total 1"), std::string::npos);
}
