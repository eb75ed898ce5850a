#include "voice_broker/redis_error.hpp"
#include "voice_broker/redis_reply.hpp"

#include <gtest/gtest.h>

namespace voice_broker {
namespace {

TEST(redis_reply, error_codes_are_matched_by_first_word) {
    const auto noscript = redis_reply::make_error("NOSCRIPT No matching script. Please use EVAL.");
    EXPECT_TRUE(noscript.is_error());
    EXPECT_TRUE(noscript.is_error("NOSCRIPT"));
    EXPECT_FALSE(noscript.is_error("NOSCRIPTX"));
    EXPECT_FALSE(noscript.is_error("NOSCRIP"));
    EXPECT_TRUE(redis_reply::make_error("READONLY").is_error("READONLY"));
    EXPECT_FALSE(redis_reply::make_status("READONLY x").is_error("READONLY"));
}

TEST(redis_reply, is_compares_status_and_bulk_strings) {
    EXPECT_TRUE(redis_reply::make_status("OK").is("OK"));
    EXPECT_TRUE(redis_reply::make_string("PONG").is("PONG"));
    EXPECT_FALSE(redis_reply::make_error("OK").is("OK"));
    EXPECT_FALSE(redis_reply::nil().is(""));
}

TEST(redis_reply, describe_is_short_and_typed) {
    EXPECT_EQ(redis_reply::nil().describe(), "(nil)");
    EXPECT_EQ(redis_reply::make_integer(-3).describe(), "(integer) -3");
    EXPECT_EQ(redis_reply::make_string("a").describe(), "\"a\"");
    EXPECT_EQ(redis_reply::make_status("OK").describe(), "+OK");
    EXPECT_EQ(redis_reply::make_error("ERR x").describe(), "-ERR x");
    EXPECT_EQ(redis_reply::make_array({redis_reply::make_integer(1), redis_reply::nil()}).describe(),
              "[(integer) 1, (nil)]");
    EXPECT_LT(redis_reply::make_string(std::string(10000, 'x')).describe().size(), 100u);
    std::vector<redis_reply> many(50, redis_reply::make_integer(1));
    EXPECT_NE(redis_reply::make_array(many).describe().find("(50 elements)"), std::string::npos);
}

TEST(redis_error, says_which_failures_may_have_run) {
    EXPECT_TRUE(redis_outcome_unknown(redis_error::timeout));
    EXPECT_TRUE(redis_outcome_unknown(redis_error::connection_lost));
    EXPECT_TRUE(redis_outcome_unknown(redis_error::closed));
    EXPECT_FALSE(redis_outcome_unknown(redis_error::not_connected));
    EXPECT_FALSE(redis_outcome_unknown(redis_error::queue_full));
    EXPECT_FALSE(redis_outcome_unknown(std::error_code{}));
    EXPECT_EQ(std::error_code(redis_error::timeout).category().name(), std::string("redis"));
    EXPECT_FALSE(std::error_code(redis_error::empty_command).message().empty());
    EXPECT_FALSE(redis_outcome_unknown(redis_error::empty_command));
}

}  // namespace
}  // namespace voice_broker
