// Unit tests for secure_equals: constant-time comparison of secrets.
#include "voice_broker/secure_equals.hpp"

#include <gtest/gtest.h>

#include <string>

namespace voice_broker {
namespace {

TEST(secure_equals, compares_content_and_length) {
    EXPECT_TRUE(secure_equals("admin-token", "admin-token"));
    EXPECT_TRUE(secure_equals("", ""));
    EXPECT_FALSE(secure_equals("admin-token", "admin-tokeN"));
    EXPECT_FALSE(secure_equals("admin-token", "admin-token "));
    EXPECT_FALSE(secure_equals("admin-token", "admin"));
    EXPECT_FALSE(secure_equals("", "x"));
    EXPECT_FALSE(secure_equals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

}  // namespace
}  // namespace voice_broker
