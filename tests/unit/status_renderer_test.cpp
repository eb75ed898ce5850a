// Unit tests for status_renderer: its document must be the one status_json() builds, plus
// "type":"status", for every kind of status; byte for byte, as nlohmann would dump it.
#include "voice_broker/status_renderer.hpp"

#include "voice_broker/session_api.hpp"

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

std::string expected_push(const entry_status& s, const session_limits& limits, const wall_clock_mapping& clock) {
    auto doc = status_json(s, limits, clock);
    doc["type"] = "status";
    return doc.dump();
}

void expect_same_document(const entry_status& s, const session_limits& limits, const wall_clock_mapping& clock) {
    const auto fast = status_renderer(limits, clock).render(s);
    const auto slow = expected_push(s, limits, clock);
    const auto parsed = json::parse(fast, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << "not JSON: " << fast;
    EXPECT_EQ(parsed, json::parse(slow)) << "fast: " << fast << "\nslow: " << slow;
    EXPECT_EQ(fast, slow);
}

TEST(status_renderer, a_queued_status_is_the_status_json_document) {
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
    const auto doc = json::parse(status_renderer(limits, clock).render(s));
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

TEST(status_renderer, matches_status_json_over_many_random_statuses_and_limits) {
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
        s.reason = static_cast<end_reason>(pick(0, 4));
        s.tokens_minted = static_cast<int>(pick(0, 3));
        SCOPED_TRACE("round " + std::to_string(round));
        expect_same_document(s, limits, clock);
        if (HasFailure()) return;
    }
}

}  // namespace
}  // namespace voice_broker
