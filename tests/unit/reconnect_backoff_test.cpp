#include "voice_broker/reconnect_backoff.hpp"

#include <gtest/gtest.h>

#include <set>

namespace voice_broker {
namespace {

using std::chrono::milliseconds;

TEST(reconnect_backoff, doubles_up_to_the_maximum_within_the_jitter_band) {
    reconnect_backoff backoff(milliseconds{100}, milliseconds{1000}, 42);
    const milliseconds ceilings[] = {milliseconds{100}, milliseconds{200}, milliseconds{400},
                                     milliseconds{800}, milliseconds{1000}, milliseconds{1000}};
    for (const auto ceiling : ceilings) {
        const auto delay = backoff.next_delay();
        EXPECT_GE(delay, ceiling / 2);
        EXPECT_LE(delay, ceiling);
    }
    EXPECT_EQ(backoff.failures(), 6u);
}

TEST(reconnect_backoff, reset_starts_again_from_the_initial_delay) {
    reconnect_backoff backoff(milliseconds{100}, milliseconds{5000}, 7);
    for (int i = 0; i < 10; ++i) backoff.next_delay();
    EXPECT_GE(backoff.next_delay(), milliseconds{2500});
    backoff.reset();
    EXPECT_LE(backoff.next_delay(), milliseconds{100});
}

TEST(reconnect_backoff, jitter_spreads_clients_that_failed_together) {
    // Twenty clients, same failure history, different seeds: their delays differ.
    std::set<long> delays;
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
        reconnect_backoff backoff(milliseconds{1000}, milliseconds{1000}, seed);
        delays.insert(static_cast<long>(backoff.next_delay().count()));
    }
    EXPECT_GE(delays.size(), 15u);
}

TEST(reconnect_backoff, never_overflows_after_many_failures) {
    reconnect_backoff backoff(milliseconds{1}, milliseconds{30000}, 1);
    for (int i = 0; i < 10000; ++i) {
        const auto delay = backoff.next_delay();
        ASSERT_GE(delay.count(), 0);
        ASSERT_LE(delay, milliseconds{30000});
    }
}

TEST(reconnect_backoff, zero_initial_delay_retries_at_once) {
    reconnect_backoff backoff(milliseconds{0}, milliseconds{0}, 1);
    EXPECT_EQ(backoff.next_delay(), milliseconds{0});
    EXPECT_EQ(backoff.next_delay(), milliseconds{0});
}

}  // namespace
}  // namespace voice_broker
