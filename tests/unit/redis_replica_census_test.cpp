// promotable_replicas: which replicas in a SENTINEL REPLICAS answer a failover could pick.
#include "voice_broker/redis_replica_census.hpp"
#include "voice_broker/redis_reply.hpp"

#include <gtest/gtest.h>

namespace voice_broker {
namespace {

redis_reply replica(const std::string& flags, const std::string& priority = "100") {
    std::vector<redis_reply> fields;
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"name", "127.0.0.1:6380"}, {"flags", flags}, {"master-link-status", "ok"}, {"slave-priority", priority}}) {
        fields.push_back(redis_reply::make_string(k));
        fields.push_back(redis_reply::make_string(v));
    }
    return redis_reply::make_array(std::move(fields));
}

TEST(promotable_replicas, a_replica_in_good_standing_counts) {
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({replica("slave")})), 1);
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({replica("slave"), replica("slave")})), 2);
}

TEST(promotable_replicas, none_is_zero) { EXPECT_EQ(promotable_replicas(redis_reply::make_array({})), 0); }

// As Sentinel lists the old master after a failover, until it comes back.
TEST(promotable_replicas, a_down_or_disconnected_replica_does_not) {
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({replica("s_down,slave,disconnected")})), 0);
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({replica("slave,s_down")})), 0);
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({replica("o_down,slave")})), 0);
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({replica("slave,disconnected"), replica("slave")})), 1);
}

TEST(promotable_replicas, priority_zero_is_never_promoted) {
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({replica("slave", "0"), replica("slave", "10")})), 1);
}

// A flag that merely contains "s_down" as part of a longer word is not s_down.
TEST(promotable_replicas, flags_are_matched_whole) {
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({replica("slave,not_s_down_really")})), 1);
}

TEST(promotable_replicas, an_answer_that_is_not_the_list_is_refused) {
    EXPECT_EQ(promotable_replicas(redis_reply::make_error("ERR No such master with that name")), std::nullopt);
    EXPECT_EQ(promotable_replicas(redis_reply::make_string("slave")), std::nullopt);
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({redis_reply::make_string("flags")})), std::nullopt);
    EXPECT_EQ(promotable_replicas(redis_reply::make_array({redis_reply::make_array(
                  {redis_reply::make_string("name"), redis_reply::make_string("x")})})),
              std::nullopt);  // no flags
}

}  // namespace
}  // namespace voice_broker
