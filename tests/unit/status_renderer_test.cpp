// Unit tests for status_renderer, the one serializer of the status document: for every kind of
// status, its answer and its push must be the document docs/API.md describes, byte for byte as a
// JSON object dump gives it.  The reference below builds that document the slow, obvious way.
#include "voice_broker/status_renderer.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <limits>
#include <random>
#include <string>
#include <vector>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

const steady_time t0 = steady_time{} + std::chrono::hours{1000};
const auto wall_t0 = std::chrono::system_clock::time_point{} + std::chrono::seconds{1795514400};

// The documented status (docs/API.md), built as a JSON object.
json reference_status(const entry_status& s, const session_limits& limits, const wall_clock_mapping& clock) {
    auto warnings = json::array();
    for (auto w : limits.warnings) {
        if (w < limits.session_duration) warnings.push_back(w.count());
    }
    json out = {{"ticket", s.ticket},
                {"state", to_string(s.state)},
                {"queueLength", s.queue_length},
                {"remainingSeconds", s.remaining_seconds},
                {"limits",
                 {{"maxConcurrentUsers", limits.max_concurrent_users},
                  {"sessionSeconds", limits.session_duration.count()},
                  {"warningSeconds", warnings}}}};
    if (s.paused) out["paused"] = true;
    switch (s.state) {
    case entry_state::queued:
        out["position"] = s.position;
        out["etaSeconds"] = s.eta_seconds;
        break;
    case entry_state::active:
        out["startedAt"] = format_iso8601(clock.to_wall(s.started_at));
        out["expiresAt"] = format_iso8601(clock.to_wall(s.expires_at));
        out["confirmed"] = s.confirmed;
        out["etaSeconds"] = 0;
        if (s.last_warning.count() > 0) out["lastWarningSeconds"] = s.last_warning.count();  // once a warning fired
        break;
    case entry_state::ended:
        out["reason"] = to_string(s.reason);
        break;
    }
    return out;
}

void expect_same_bytes(const std::string& fast, const std::string& slow) {
    const auto parsed = json::parse(fast, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << "not JSON: " << fast;
    EXPECT_EQ(parsed, json::parse(slow)) << "fast: " << fast << "\nslow: " << slow;
    EXPECT_EQ(fast, slow);
}

void expect_same_document(const entry_status& s, const session_limits& limits, const wall_clock_mapping& clock) {
    const status_renderer renderer(limits, clock);
    auto doc = reference_status(s, limits, clock);
    expect_same_bytes(renderer.answer(s), doc.dump(-1, ' ', false, json::error_handler_t::replace));
    doc["type"] = "status";
    expect_same_bytes(renderer.push(s), doc.dump(-1, ' ', false, json::error_handler_t::replace));
}

TEST(status_renderer, a_queued_status_is_the_documented_document) {
    entry_status s;
    s.ticket = "Tk1_abcdefghijklmnopq";
    s.entry_id = 17;
    s.state = entry_state::queued;
    s.position = 3;
    s.queue_length = 9;
    s.eta_seconds = 600;
    const session_limits limits;
    const wall_clock_mapping clock{t0, wall_t0};
    expect_same_document(s, limits, clock);
    const auto doc = json::parse(status_renderer(limits, clock).push(s));
    EXPECT_EQ(doc["type"], "status");
    EXPECT_EQ(doc["position"], 3);
    EXPECT_TRUE(doc["etaSeconds"].is_number_integer());
    EXPECT_EQ(doc["limits"]["warningSeconds"], json::parse("[180,120,60]"));
}

TEST(status_renderer, odd_tickets_are_escaped_as_nlohmann_escapes_them) {
    const session_limits limits;
    const wall_clock_mapping clock{t0, wall_t0};
    const std::vector<std::string> tickets = {
        "", "\"", "\\", "a\"b\\c", std::string("nul\0here", 8), "\x01\x1f\x7f", "tab\there\nnewline\r\b\f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x99", "</script>", "{\"ticket\":1}", std::string(300, 'x')};
    for (const auto& ticket : tickets) {
        for (auto state : {entry_state::queued, entry_state::active, entry_state::ended}) {
            entry_status s;
            s.ticket = ticket;
            s.state = state;
            s.started_at = t0;
            s.expires_at = t0 + 300s;
            SCOPED_TRACE(json(ticket).dump());
            expect_same_document(s, limits, clock);
        }
    }
}

TEST(status_renderer, an_ended_status_shows_its_reason_and_only_the_warnings_that_fit_a_session) {
    entry_status s;
    s.ticket = "t";
    s.state = entry_state::ended;
    s.reason = end_reason::abandoned;
    session_limits limits;
    limits.session_duration = 150s;
    const wall_clock_mapping clock{t0, wall_t0};
    const auto doc = json::parse(status_renderer(limits, clock).answer(s));
    EXPECT_EQ(doc["state"], "ended");
    EXPECT_EQ(doc["reason"], "abandoned");
    EXPECT_EQ(doc["limits"]["warningSeconds"], json::parse("[120,60]")) << "180 s is longer than the session";
    EXPECT_FALSE(doc.contains("position"));
    EXPECT_FALSE(doc.contains("type")) << "an answer is not a push";
}

TEST(status_renderer, matches_the_reference_over_many_random_statuses_and_limits) {
    std::mt19937_64 rng(20261124);
    auto pick = [&rng](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_\"\\\n\x01 \xc3\xa9";
    for (int round = 0; round < 5000; ++round) {
        session_limits limits;
        limits.max_concurrent_users = static_cast<std::size_t>(pick(1, 1000));
        limits.session_duration = std::chrono::seconds{pick(1, 7200)};
        limits.warnings.clear();
        for (auto n = pick(0, 4); n > 0; --n) limits.warnings.push_back(std::chrono::seconds{pick(0, 7200)});
        const wall_clock_mapping clock{t0 + std::chrono::milliseconds{pick(-1'000'000'000, 1'000'000'000)}, wall_t0};

        entry_status s;
        s.state = static_cast<entry_state>(pick(0, 2));
        if (pick(0, 3) == 0) {  // odd: any bytes from the alphabet (kept valid UTF-8 by whole characters)
            for (auto n = pick(0, 30); n > 0; --n) {
                const auto i = static_cast<std::size_t>(pick(0, static_cast<std::int64_t>(alphabet.size()) - 3));
                s.ticket += alphabet[i];
            }
            if (pick(0, 1) == 0) s.ticket += "\xc3\xa9";
        } else {
            s.ticket = "Tk" + std::to_string(round) + "_abcdefghijklmnopq";
        }
        s.entry_id = static_cast<std::uint64_t>(pick(0, std::numeric_limits<std::int64_t>::max()));
        s.position = static_cast<std::size_t>(pick(0, 1'000'000));
        s.queue_length = pick(0, 20) == 0 ? std::numeric_limits<std::size_t>::max() : static_cast<std::size_t>(pick(0, 1'000'000));
        s.eta_seconds = pick(0, 20) == 0 ? std::numeric_limits<std::int64_t>::max() : pick(0, 10'000'000);
        s.remaining_seconds = pick(0, 20) == 0 ? std::numeric_limits<std::int64_t>::min() : pick(0, 7200);
        s.started_at = t0 + std::chrono::milliseconds{pick(-100'000'000, 100'000'000)};
        s.expires_at = s.started_at + std::chrono::milliseconds{pick(0, 7'200'000)};
        s.confirmed = pick(0, 1) == 1;
        s.reason = static_cast<end_reason>(pick(0, static_cast<std::int64_t>(all_end_reasons.size()) - 1));
        s.paused = pick(0, 3) == 0;
        s.last_warning = std::chrono::seconds{pick(0, 1) == 0 ? 0 : pick(1, 7200)};
        SCOPED_TRACE("round " + std::to_string(round));
        expect_same_document(s, limits, clock);
        if (HasFailure()) return;
    }
}

}  // namespace
}  // namespace voice_broker
