// Unit tests for random_bytes: hex ids from OpenSSL's generator.
#include "voice_broker/random_bytes.hpp"

#include <gtest/gtest.h>

#include <string>

namespace voice_broker {
namespace {

TEST(random_hex, is_two_hex_digits_per_byte_and_random) {
    const auto a = random_hex(16);
    EXPECT_EQ(a.size(), 32u);
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
    EXPECT_NE(a, random_hex(16));
    EXPECT_EQ(random_hex(0), "");
}

}  // namespace
}  // namespace voice_broker
