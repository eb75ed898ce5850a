// Unit tests for waiting_queue: positions and removals against a std::set of the same ids.
#include "voice_broker/waiting_queue.hpp"

#include <gtest/gtest.h>

#include <iterator>
#include <random>
#include <set>
#include <vector>

namespace voice_broker {
namespace {

TEST(waiting_queue, places_follow_join_order_and_close_up_when_someone_leaves) {
    waiting_queue q;
    EXPECT_TRUE(q.empty());
    for (std::uint64_t id : {3, 5, 8, 13}) q.push_back(id);
    EXPECT_EQ(q.size(), 4u);
    EXPECT_EQ(q.front(), 3u);
    EXPECT_EQ(q.position(8), 3u);
    EXPECT_EQ(q.position(4), 0u) << "not queued";
    EXPECT_TRUE(q.erase(5));
    EXPECT_FALSE(q.erase(5));
    EXPECT_EQ(q.position(8), 2u);
    EXPECT_TRUE(q.erase(3));  // the head is admitted
    EXPECT_EQ(q.front(), 8u);
    EXPECT_EQ(q.position(13), 2u);
    EXPECT_EQ(std::vector<std::uint64_t>(q.begin(), q.end()), (std::vector<std::uint64_t>{8, 13}));
}

TEST(waiting_queue, agrees_with_a_set_through_random_joins_admissions_and_departures) {
    std::mt19937_64 rng(42);
    waiting_queue q;
    std::set<std::uint64_t> model;
    std::uint64_t next_id = 1;
    for (int op = 0; op < 200000; ++op) {
        const int roll = std::uniform_int_distribution<int>(0, 99)(rng);
        if (roll < 50 || model.empty()) {
            next_id += std::uniform_int_distribution<std::uint64_t>(1, 3)(rng);  // others joined and were admitted at once
            q.push_back(next_id);
            model.insert(next_id);
        } else if (roll < 80) {
            ASSERT_EQ(q.front(), *model.begin());
            ASSERT_TRUE(q.erase(q.front()));
            model.erase(model.begin());
        } else {
            // Someone leaves from anywhere, or an id that is not queued.
            const auto id = std::uniform_int_distribution<std::uint64_t>(1, next_id)(rng);
            ASSERT_EQ(q.erase(id), model.erase(id) == 1);
        }
        ASSERT_EQ(q.size(), model.size());
        ASSERT_EQ(q.empty(), model.empty());
        if (op % 97 == 0 && !model.empty()) {
            ASSERT_TRUE(std::equal(q.begin(), q.end(), model.begin(), model.end()));
            const auto id = std::uniform_int_distribution<std::uint64_t>(1, next_id)(rng);
            const auto it = model.find(id);
            ASSERT_EQ(q.position(id), it == model.end() ? 0u : static_cast<std::size_t>(std::distance(model.begin(), it)) + 1) << id;
        }
    }
}

}  // namespace
}  // namespace voice_broker
