// Unit tests for ip_network: the TRUSTED_PROXIES blocks, IPv4 and IPv6, and what sockets report.
#include "voice_broker/ip_network.hpp"

#include <gtest/gtest.h>

#include <string>

namespace voice_broker {
namespace {

ip_network net(const char* text) {
    const auto n = ip_network::parse(text);
    EXPECT_TRUE(n.has_value()) << text;
    return n.value_or(*ip_network::parse("255.255.255.255"));
}

TEST(ip_network, ipv4_blocks) {
    const auto ten = net("10.0.0.0/8");
    EXPECT_TRUE(ten.contains("10.0.0.0"));
    EXPECT_TRUE(ten.contains("10.255.255.255"));
    EXPECT_FALSE(ten.contains("11.0.0.0"));
    EXPECT_FALSE(ten.contains("9.255.255.255"));

    const auto lan = net("192.168.1.0/24");
    EXPECT_TRUE(lan.contains("192.168.1.77"));
    EXPECT_FALSE(lan.contains("192.168.2.1"));
}

TEST(ip_network, prefixes_that_do_not_end_on_a_byte) {
    const auto half = net("10.0.0.0/9");
    EXPECT_TRUE(half.contains("10.127.255.255"));
    EXPECT_FALSE(half.contains("10.128.0.0"));
    const auto small = net("172.16.0.4/30");
    EXPECT_TRUE(small.contains("172.16.0.7"));
    EXPECT_FALSE(small.contains("172.16.0.8"));
    EXPECT_FALSE(small.contains("172.16.0.3"));
}

TEST(ip_network, a_bare_address_is_a_single_host) {
    const auto host = net("127.0.0.1");
    EXPECT_TRUE(host.contains("127.0.0.1"));
    EXPECT_FALSE(host.contains("127.0.0.2"));
    const auto v6 = net("::1");
    EXPECT_TRUE(v6.contains("::1"));
    EXPECT_FALSE(v6.contains("::2"));
    EXPECT_FALSE(v6.contains("127.0.0.1")) << "::1 and 127.0.0.1 are different hosts";
}

TEST(ip_network, ipv6_blocks) {
    const auto doc = net("2001:db8::/32");
    EXPECT_TRUE(doc.contains("2001:db8::1"));
    EXPECT_TRUE(doc.contains("2001:db8:ffff:ffff::1"));
    EXPECT_FALSE(doc.contains("2001:db9::1"));
    const auto ula = net("fd00::/8");
    EXPECT_TRUE(ula.contains("fdff::1"));
    EXPECT_FALSE(ula.contains("fe80::1"));
    EXPECT_TRUE(net("[::1]").contains("[::1]")) << "bracketed, as in a Host header";
}

TEST(ip_network, ipv4_clients_on_a_dual_stack_socket) {
    // A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6 addresses.
    EXPECT_TRUE(net("10.0.0.0/8").contains("::ffff:10.1.2.3"));
    EXPECT_TRUE(net("127.0.0.1").contains("::ffff:127.0.0.1"));
    EXPECT_TRUE(net("::ffff:10.0.0.0/104").contains("10.9.9.9"));
}

TEST(ip_network, catch_all_blocks) {
    const auto any_v4 = net("0.0.0.0/0");
    EXPECT_TRUE(any_v4.contains("1.2.3.4"));
    EXPECT_TRUE(any_v4.contains("255.255.255.255"));
    EXPECT_FALSE(any_v4.contains("2001:db8::1")) << "an IPv4 block holds no IPv6 address";
    const auto any = net("::/0");
    EXPECT_TRUE(any.contains("2001:db8::1"));
    EXPECT_TRUE(any.contains("1.2.3.4"));
}

TEST(ip_network, malformed_blocks_are_refused) {
    for (const char* bad : {"", "abc", "10.0.0/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8",
                            "10.0.0.0/8x", "256.0.0.1", "::/129", "2001:db8::g", "10.0.0.0 /8", "localhost"}) {
        EXPECT_FALSE(ip_network::parse(bad).has_value()) << bad;
    }
}

TEST(ip_network, a_malformed_address_is_never_contained) {
    const auto any = net("::/0");
    for (const char* bad : {"", "garbage", "1.2.3", "fe80::1%eth0x", "1.2.3.4:80"}) EXPECT_FALSE(any.contains(bad)) << bad;
}

TEST(ip_network, parse_ip_normalises_to_sixteen_bytes) {
    const auto v4 = parse_ip("1.2.3.4");
    ASSERT_TRUE(v4);
    EXPECT_EQ((*v4)[10], 0xff);
    EXPECT_EQ((*v4)[11], 0xff);
    EXPECT_EQ((*v4)[12], 1);
    EXPECT_EQ((*v4)[15], 4);
    EXPECT_EQ(parse_ip("::ffff:1.2.3.4"), v4);
    EXPECT_FALSE(parse_ip("1.2.3.4.5").has_value());
}

}  // namespace
}  // namespace voice_broker
