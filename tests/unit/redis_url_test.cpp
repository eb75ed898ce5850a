#include "voice_broker/redis_url.hpp"

#include <gtest/gtest.h>

namespace voice_broker {
namespace {

struct url_case {
    std::string text;
    std::string host;
    std::uint16_t port;
    std::string socket_path;
    std::string username;
    std::string password;
    int database;
};

class redis_url_accepts : public ::testing::TestWithParam<url_case> {};

TEST_P(redis_url_accepts, parses_every_part) {
    const auto& expected = GetParam();
    const auto parsed = redis_url::parse(expected.text);
    ASSERT_TRUE(std::holds_alternative<redis_url>(parsed)) << expected.text << ": " << std::get<std::string>(parsed);
    const auto& url = std::get<redis_url>(parsed);
    EXPECT_EQ(url.endpoint.host, expected.host);
    EXPECT_EQ(url.endpoint.port, expected.port);
    EXPECT_EQ(url.endpoint.socket_path, expected.socket_path);
    EXPECT_EQ(url.username, expected.username);
    EXPECT_EQ(url.password, expected.password);
    EXPECT_EQ(url.database, expected.database);
}

INSTANTIATE_TEST_SUITE_P(
    table, redis_url_accepts,
    ::testing::Values(
        url_case{"redis://127.0.0.1:6379/0", "127.0.0.1", 6379, "", "", "", 0},
        url_case{"redis://localhost", "localhost", 6379, "", "", "", 0},
        url_case{"redis://redis:6380", "redis", 6380, "", "", "", 0},
        url_case{"redis://redis:6380/", "redis", 6380, "", "", "", 0},
        url_case{"redis://redis/3", "redis", 6379, "", "", "", 3},
        url_case{"redis://:secret@10.0.0.5:6379/2", "10.0.0.5", 6379, "", "", "secret", 2},
        url_case{"redis://app:secret@redis.internal:7000/15", "redis.internal", 7000, "", "app", "secret", 15},
        url_case{"REDIS://Host-1:6379", "Host-1", 6379, "", "", "", 0},
        url_case{"redis://[::1]:6379/1", "::1", 6379, "", "", "", 1},
        url_case{"redis://[fd00::5]/0", "fd00::5", 6379, "", "", "", 0},
        // Passwords with reserved characters, raw or %-encoded.
        url_case{"redis://:p@ss:w/rd?@host:6379/4", "host", 6379, "", "", "p@ss:w/rd?", 4},
        url_case{"redis://:p%40ss%3Aw%2Frd@host/4", "host", 6379, "", "", "p@ss:w/rd", 4},
        url_case{"redis://user%20name:pw@host", "host", 6379, "", "user name", "pw", 0},
        url_case{"redis://host:6379?db=7", "host", 6379, "", "", "", 7},
        url_case{"redis://:@host", "host", 6379, "", "", "", 0},
        url_case{"unix:///run/redis/redis.sock", "", 0, "/run/redis/redis.sock", "", "", 0},
        url_case{"unix:///tmp/r.sock?db=5", "", 0, "/tmp/r.sock", "", "", 5},
        url_case{"unix://:secret@/tmp/r.sock?db=1", "", 0, "/tmp/r.sock", "", "secret", 1},
        url_case{"unix://app:secret@/tmp/r.sock", "", 0, "/tmp/r.sock", "app", "secret", 0}));

struct refused_case {
    std::string text;
    std::string message_part;
};

class redis_url_refuses : public ::testing::TestWithParam<refused_case> {};

TEST_P(redis_url_refuses, with_a_message_that_says_what_to_do) {
    const auto& expected = GetParam();
    const auto parsed = redis_url::parse(expected.text);
    ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << expected.text;
    const auto& message = std::get<std::string>(parsed);
    EXPECT_NE(message.find(expected.message_part), std::string::npos) << message;
    // The password never appears in an error message.
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    table, redis_url_refuses,
    ::testing::Values(refused_case{"rediss://:hunter2@host:6380/0", "TLS"},
                      refused_case{"http://host:6379", "redis://"},
                      refused_case{"", "redis://"},
                      refused_case{"127.0.0.1:6379", "redis://"},
                      refused_case{"redis://", "no host"},
                      refused_case{"redis://:hunter2@/0", "no host"},
                      refused_case{"redis://hunter2@host:6379/0", "after a colon"},
                      refused_case{"redis://host:0", "host[:port]"},
                      refused_case{"redis://host:65536", "host[:port]"},
                      refused_case{"redis://host:port", "host[:port]"},
                      refused_case{"redis://host:", "host[:port]"},
                      refused_case{"redis://::1:6379", "IPv6 in brackets"},
                      refused_case{"redis://ho st:6379", "host[:port]"},
                      refused_case{"redis://host/x", "database number"},
                      refused_case{"redis://host/-1", "database number"},
                      refused_case{"redis://host/1?db=2", "twice"},
                      refused_case{"redis://host?timeout=5", "unknown query parameter 'timeout'"},
                      refused_case{"redis://:hunter2%4@host", "%-escape"},
                      refused_case{"unix://relative/path.sock", "absolute path"},
                      refused_case{"unix://", "absolute path"},
                      refused_case{"unix:///tmp/r.sock?db=x", "db="}));

TEST(redis_url, default_text_is_the_default_value) {
    const auto parsed = redis_url::parse(redis_url::default_text);
    ASSERT_TRUE(std::holds_alternative<redis_url>(parsed));
    EXPECT_EQ(std::get<redis_url>(parsed), redis_url{});
}

TEST(redis_url, redacted_hides_the_password_only) {
    auto url = std::get<redis_url>(redis_url::parse("redis://app:hunter2@host:7000/3"));
    EXPECT_EQ(url.redacted(), "redis://app:***@host:7000/3");
    url = std::get<redis_url>(redis_url::parse("redis://:hunter2@[::1]/0"));
    EXPECT_EQ(url.redacted(), "redis://:***@[::1]:6379/0");
    url = std::get<redis_url>(redis_url::parse("redis://host"));
    EXPECT_EQ(url.redacted(), "redis://host:6379/0");
    url = std::get<redis_url>(redis_url::parse("unix://:hunter2@/tmp/r.sock?db=2"));
    EXPECT_EQ(url.redacted(), "unix://:***@/tmp/r.sock?db=2");
}

TEST(redis_endpoint, host_port_forms) {
    EXPECT_EQ(redis_endpoint::parse_host_port("10.0.0.1:26379"), (redis_endpoint{"10.0.0.1", 26379, {}}));
    EXPECT_EQ(redis_endpoint::parse_host_port("[::1]:26380"), (redis_endpoint{"::1", 26380, {}}));
    EXPECT_EQ(redis_endpoint::parse_host_port("sentinel-1", 26379), (redis_endpoint{"sentinel-1", 26379, {}}));
    EXPECT_FALSE(redis_endpoint::parse_host_port("sentinel-1"));
    EXPECT_FALSE(redis_endpoint::parse_host_port(":26379"));
    EXPECT_FALSE(redis_endpoint::parse_host_port("[::1"));
    EXPECT_FALSE(redis_endpoint::parse_host_port("[::1]x"));
    EXPECT_FALSE(redis_endpoint::parse_host_port("h:1:2"));
    EXPECT_EQ((redis_endpoint{"::1", 6379, {}}).to_string(), "[::1]:6379");
    EXPECT_EQ((redis_endpoint{{}, 0, "/tmp/r.sock"}).to_string(), "unix:/tmp/r.sock");
}

TEST(redis_sentinel_list, parses_in_order_with_default_port) {
    const auto parsed = parse_sentinel_list("10.0.0.1:26379, sentinel-2 ,[::1]:26380");
    ASSERT_TRUE(std::holds_alternative<std::vector<redis_endpoint>>(parsed)) << std::get<std::string>(parsed);
    const auto& list = std::get<std::vector<redis_endpoint>>(parsed);
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0], (redis_endpoint{"10.0.0.1", 26379, {}}));
    EXPECT_EQ(list[1], (redis_endpoint{"sentinel-2", 26379, {}}));
    EXPECT_EQ(list[2], (redis_endpoint{"::1", 26380, {}}));
}

TEST(redis_sentinel_list, refuses_what_it_cannot_use) {
    for (const auto* bad : {"", " ", "a:1,,b:2", "a:1,", "a:x", "a:1,a:1"}) {
        const auto parsed = parse_sentinel_list(bad);
        EXPECT_TRUE(std::holds_alternative<std::string>(parsed)) << "'" << bad << "'";
    }
    EXPECT_NE(std::get<std::string>(parse_sentinel_list("a:1,b:x")).find("'b:x'"), std::string::npos);
}

}  // namespace
}  // namespace voice_broker
