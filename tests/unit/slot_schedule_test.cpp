// Unit tests for slot_schedule: the closed form (and the simulation it falls back to) must give
// exactly what the plain simulation gives, place by place, for any state of the slots.
#include "voice_broker/slot_schedule.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <queue>
#include <random>
#include <vector>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;

// The rule in its plainest form (session_broker's loop before the closed form): the next
// visitor takes the slot that frees first, which frees again one session later.
std::vector<ns> simulate(const std::vector<ns>& frees, ns session, std::size_t places) {
    std::priority_queue<ns, std::vector<ns>, std::greater<>> heap(frees.begin(), frees.end());
    std::vector<ns> waits;
    for (std::size_t i = 0; i < places; ++i) {
        if (heap.empty()) {
            waits.push_back(ns{0});
            continue;
        }
        const auto t = heap.top();
        heap.pop();
        waits.push_back(t);
        heap.push(t + session);
    }
    return waits;
}

std::int64_t ceil_seconds(ns t) { return (t.count() + 999'999'999) / 1'000'000'000; }

// Checks every place against the simulation; returns whether the slots started more than one
// session apart (the case the closed form alone cannot answer).
bool matches_simulation(const std::vector<ns>& frees, ns session, std::size_t places) {
    const slot_schedule schedule(frees, session, places);
    const auto expected = simulate(frees, session, places);
    for (std::size_t p = 1; p <= places; ++p) {
        EXPECT_EQ(schedule.wait(p), expected[p - 1]) << "place " << p << " of " << frees.size() << " slots";
        EXPECT_EQ(schedule.eta_seconds(p), ceil_seconds(expected[p - 1])) << "place " << p;
        if (schedule.wait(p) != expected[p - 1]) return false;  // one report per state is enough
    }
    if (frees.empty()) return false;
    const auto [lo, hi] = std::minmax_element(frees.begin(), frees.end());
    return *hi - *lo > session;
}

TEST(slot_schedule, the_closed_form_gives_the_simulations_answer_for_every_place) {
    std::mt19937_64 rng(20261124);
    for (int round = 0; round < 3000; ++round) {
        const ns session = std::chrono::seconds{std::uniform_int_distribution<int>(1, 600)(rng)} +
                           ns{std::uniform_int_distribution<std::int64_t>(0, 999'999'999)(rng)};
        const auto slots = std::uniform_int_distribution<std::size_t>(1, 8)(rng);
        std::vector<ns> frees;
        for (std::size_t i = 0; i < slots; ++i) {
            switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
            case 0: frees.push_back(ns{0}); break;         // a free slot
            case 1: frees.push_back(session); break;       // a holder who just started
            default: frees.push_back(ns{std::uniform_int_distribution<std::int64_t>(0, session.count())(rng)});
            }
        }
        ASSERT_FALSE(matches_simulation(frees, session, std::uniform_int_distribution<std::size_t>(1, 200)(rng)))
            << "every slot frees within a session: the closed form alone must answer";
        if (HasFailure()) return;
    }
}

TEST(slot_schedule, after_a_reload_shortened_sessions_the_simulation_takes_over_then_the_closed_form) {
    std::mt19937_64 rng(7);
    int fallbacks = 0;
    for (int round = 0; round < 3000; ++round) {
        // Holders admitted under sessions up to 20 times longer than the current one.
        const ns session = std::chrono::seconds{std::uniform_int_distribution<int>(1, 120)(rng)};
        const auto slots = std::uniform_int_distribution<std::size_t>(1, 8)(rng);
        std::vector<ns> frees;
        for (std::size_t i = 0; i < slots; ++i) {
            frees.push_back(ns{std::uniform_int_distribution<std::int64_t>(0, 20 * session.count())(rng)});
        }
        if (matches_simulation(frees, session, std::uniform_int_distribution<std::size_t>(1, 300)(rng))) ++fallbacks;
        if (HasFailure()) return;
    }
    EXPECT_GT(fallbacks, 2000) << "the fallback was hardly exercised";
}

TEST(slot_schedule, the_examples_of_the_broker_tests) {
    // One slot, its holder 200 s from the end, sessions of 300 s: 200, 500, 800.
    const slot_schedule one({200s}, 300s, 3);
    EXPECT_EQ(one.eta_seconds(1), 200);
    EXPECT_EQ(one.eta_seconds(2), 500);
    EXPECT_EQ(one.eta_seconds(3), 800);
    // Two slots freeing at 200 s and 300 s: 200, 300, 500, 600.
    const slot_schedule two({300s, 200s}, 300s, 4);
    EXPECT_EQ(two.eta_seconds(1), 200);
    EXPECT_EQ(two.eta_seconds(2), 300);
    EXPECT_EQ(two.eta_seconds(3), 500);
    EXPECT_EQ(two.eta_seconds(4), 600);
}

TEST(slot_schedule, a_holder_far_beyond_the_session_keeps_its_slot_while_the_other_serves_many) {
    // One holder with 1000 s left after sessions became 60 s; the other slot is free now.
    const slot_schedule s({1000s, 0s}, 60s, 30);
    for (std::size_t p = 1; p <= 16; ++p) EXPECT_EQ(s.wait(p), 60s * static_cast<int>(p - 1)) << p;  // 0..900 s
    EXPECT_EQ(s.wait(17), 960s);
    EXPECT_EQ(s.wait(18), 1000s) << "the long holder's slot frees at last";
    EXPECT_EQ(s.wait(19), 1020s);
    EXPECT_EQ(s.wait(20), 1060s);
}

TEST(slot_schedule, rounds_up_to_whole_seconds_and_knows_no_slots) {
    const slot_schedule s({1ns, 1s}, 300s, 3);
    EXPECT_EQ(s.eta_seconds(1), 1) << "a nanosecond is still a wait";
    EXPECT_EQ(s.eta_seconds(2), 1);
    EXPECT_EQ(s.eta_seconds(3), 301);
    const slot_schedule none({}, 300s, 5);
    EXPECT_EQ(none.eta_seconds(5), 0);
}

}  // namespace
}  // namespace voice_broker
