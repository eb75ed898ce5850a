// Unit tests for the plain HTTP message types: percent-decoding, query parameters, cookies and
// header look-ups.
#include "voice_broker/http_message.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace voice_broker {
namespace {

using namespace std::string_literals;

TEST(percent_decode, escapes_and_plus) {
    EXPECT_EQ(percent_decode("%41%62c", false), "Abc");
    EXPECT_EQ(percent_decode("a+b", true), "a b");
    EXPECT_EQ(percent_decode("a+b", false), "a+b");
    EXPECT_EQ(percent_decode("%2B", true), "+") << "an encoded plus stays a plus";
    EXPECT_EQ(percent_decode("%2f%2F", false), "//");
    EXPECT_EQ(percent_decode("%00", false), "\0"s);
    EXPECT_EQ(percent_decode("", false), "");
    EXPECT_EQ(percent_decode("%252e", false), "%2e") << "decoded once only";
}

TEST(percent_decode, malformed_escapes_are_refused) {
    for (const char* bad : {"%", "%4", "a%", "ab%4", "%zz", "%4g", "%%41"}) {
        EXPECT_FALSE(percent_decode(bad, false).has_value()) << bad;
    }
}

http_request with_query(std::string query) {
    http_request req;
    req.query = std::move(query);
    return req;
}

TEST(http_request_query, finds_decoded_parameters) {
    const auto req = with_query("action=join&ticket=a%2Bb&msg=hello+world%21");
    EXPECT_EQ(req.query_param("action"), "join");
    EXPECT_EQ(req.query_param("ticket"), "a+b");
    EXPECT_EQ(req.query_param("msg"), "hello world!");
    EXPECT_FALSE(req.query_param("missing").has_value());
    EXPECT_FALSE(req.query_param("act").has_value()) << "a prefix is not a match";
}

TEST(http_request_query, edge_cases) {
    EXPECT_EQ(with_query("a=1&a=2").query_param("a"), "1") << "the first wins";
    EXPECT_EQ(with_query("flag&x=1").query_param("flag"), "") << "present without a value";
    EXPECT_EQ(with_query("&&action=stats&").query_param("action"), "stats");
    EXPECT_EQ(with_query("%61ction=join").query_param("action"), "join") << "names are decoded too";
    EXPECT_EQ(with_query("x=a=b").query_param("x"), "a=b");
    EXPECT_FALSE(with_query("x=%zz").query_param("x").has_value());
    EXPECT_FALSE(with_query("").query_param("x").has_value());
}

TEST(http_request_cookie, finds_the_named_cookie) {
    http_request req;
    req.headers = {{"cookie", "theme=dark; vb_ticket2=no; vb_ticket=yes;lang=en"}};
    EXPECT_EQ(req.cookie("vb_ticket"), "yes");
    EXPECT_EQ(req.cookie("lang"), "en");
    EXPECT_EQ(req.cookie("theme"), "dark");
    EXPECT_FALSE(req.cookie("vb").has_value());
    EXPECT_FALSE(req.cookie("missing").has_value());
}

TEST(http_request_cookie, several_cookie_headers_and_values_with_equals_signs) {
    http_request req;
    req.headers = {{"cookie", "a=1"}, {"accept", "*/*"}, {"cookie", "b=x=y"}};
    EXPECT_EQ(req.cookie("a"), "1");
    EXPECT_EQ(req.cookie("b"), "x=y");
    EXPECT_FALSE(http_request{}.cookie("a").has_value());
}

TEST(http_request_header, looks_up_lower_case_names) {
    http_request req;
    req.headers = {{"content-type", "application/sdp"}, {"x-session-ticket", "t"}};
    EXPECT_EQ(req.header("content-type"), "application/sdp");
    EXPECT_EQ(req.header("x-session-ticket"), "t");
    EXPECT_EQ(req.header("accept"), "");
}

TEST(for_each_list_item, splits_and_trims_spaces) {
    std::vector<std::string> items;
    for_each_list_item(" gzip;q=1 ,br,  , identity ", ',', [&](std::string_view item) { items.emplace_back(item); });
    EXPECT_EQ(items, (std::vector<std::string>{"gzip;q=1", "br", "", "identity"}));
    items.clear();
    for_each_list_item("", ',', [&](std::string_view item) { items.emplace_back(item); });
    EXPECT_TRUE(items.empty());
}

TEST(http_response_header, set_header_replaces_case_insensitively) {
    http_response res;
    res.set_header("Content-Type", "text/plain");
    res.set_header("content-type", "application/json");
    res.set_header("Vary", "Accept-Encoding");
    EXPECT_EQ(res.headers.size(), 2u);
    EXPECT_EQ(res.header("CONTENT-TYPE"), "application/json");
    EXPECT_EQ(res.header("vary"), "Accept-Encoding");
    EXPECT_EQ(res.header("etag"), "");
}

TEST(http_response_body, a_shared_body_wins_over_the_plain_one) {
    http_response res;
    res.body = "plain";
    EXPECT_EQ(res.body_view(), "plain");
    res.shared_body = std::make_shared<const std::string>("shared");
    EXPECT_EQ(res.body_view(), "shared");
}

}  // namespace
}  // namespace voice_broker
