// Unit tests for tickets: the visitor's bearer secret.
#include "voice_broker/ticket.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace voice_broker {
namespace {

TEST(ticket, is_22_base64url_characters) {
    for (int i = 0; i < 100; ++i) {
        const auto t = make_ticket();
        EXPECT_EQ(t.size(), 22u) << t;
        EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), std::string::npos)
            << t;
    }
}

TEST(ticket, a_thousand_are_distinct) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) seen.insert(make_ticket());
    EXPECT_EQ(seen.size(), 1000u);
}

TEST(ticket, every_position_varies) {
    // 128 random bits: no character position may be stuck (a sign of a broken encoder).
    std::set<char> first, last;
    for (int i = 0; i < 200; ++i) {
        const auto t = make_ticket();
        first.insert(t.front());
        last.insert(t.back());
    }
    EXPECT_GT(first.size(), 20u);
    EXPECT_GT(last.size(), 1u);
    EXPECT_LE(last.size(), 4u) << "the last character carries only 2 bits";
}

}  // namespace
}  // namespace voice_broker
