// Unit tests for visitor_ticket: the one way a visitor is found, in one order, everywhere.
#include "voice_broker/visitor_ticket.hpp"

#include <gtest/gtest.h>

namespace voice_broker {
namespace {

http_request with(std::vector<std::pair<std::string, std::string>> headers, std::string query = {}) {
    http_request req;
    req.headers = std::move(headers);
    req.query = std::move(query);
    return req;
}

TEST(visitor_ticket, header_first_then_cookie) {
    EXPECT_FALSE(find_ticket(with({}), ticket_sources::api).has_value());
    EXPECT_EQ(find_ticket(with({{"cookie", "a=1; vb_ticket=from-cookie"}}), ticket_sources::api), "from-cookie");
    EXPECT_EQ(find_ticket(with({{"cookie", "vb_ticket=from-cookie"}, {"x-session-ticket", "from-header"}}), ticket_sources::api),
              "from-header");
}

TEST(visitor_ticket, the_query_counts_on_the_live_channel_only_and_last) {
    EXPECT_FALSE(find_ticket(with({}, "ticket=from-query"), ticket_sources::api).has_value());
    EXPECT_EQ(find_ticket(with({}, "ticket=from-query"), ticket_sources::live_channel), "from-query");
    EXPECT_EQ(find_ticket(with({{"cookie", "vb_ticket=from-cookie"}}, "ticket=from-query"), ticket_sources::live_channel),
              "from-cookie");
    EXPECT_EQ(find_ticket(with({{"x-session-ticket", "from-header"}}, "ticket=from-query"), ticket_sources::live_channel),
              "from-header");
}

TEST(visitor_ticket, empty_values_are_no_ticket) {
    EXPECT_FALSE(find_ticket(with({{"x-session-ticket", ""}, {"cookie", "vb_ticket="}}, "ticket="), ticket_sources::live_channel));
    EXPECT_EQ(find_ticket(with({{"x-session-ticket", ""}}, "ticket=q"), ticket_sources::live_channel), "q");
}

TEST(visitor_ticket, the_cookie_is_http_only_strict_and_secure_over_https) {
    EXPECT_EQ(ticket_cookie_header("abc", false, false), "vb_ticket=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400");
    EXPECT_EQ(ticket_cookie_header("abc", true, true), "vb_ticket=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure");
}

}  // namespace
}  // namespace voice_broker
