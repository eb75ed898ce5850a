// Unit tests for proxy_settings: which environment variables count (as libcurl reads them),
// proxy URLs with credentials and ports, NO_PROXY by name, suffix, address and CIDR.
#include "voice_broker/proxy_settings.hpp"

#include <gtest/gtest.h>

#include <map>

namespace voice_broker {
namespace {

proxy_settings from_env(std::map<std::string, std::string> env) {
    return proxy_settings::from_environment([env](const std::string& name) -> std::optional<std::string> {
        const auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
    });
}

TEST(proxy_settings, reads_the_variables_libcurl_reads) {
    auto p = from_env({{"HTTPS_PROXY", "http://upper:3128"}, {"https_proxy", "http://lower:3128"}});
    ASSERT_TRUE(p.for_target(true, "api.openai.com"));
    EXPECT_EQ(p.for_target(true, "api.openai.com")->host, "lower") << "lower case first";
    p = from_env({{"HTTPS_PROXY", "http://upper:3128"}});
    EXPECT_EQ(p.for_target(true, "api.openai.com")->host, "upper");
    EXPECT_FALSE(p.for_target(false, "api.openai.com")) << "plain ws uses http_proxy only";
    p = from_env({{"HTTP_PROXY", "http://evil:1"}});
    EXPECT_FALSE(p.for_target(false, "example.org")) << "HTTP_PROXY is ignored (httpoxy)";
    p = from_env({{"http_proxy", "http://plain:8080"}});
    EXPECT_EQ(p.for_target(false, "example.org")->port, 8080);
    EXPECT_FALSE(from_env({}).for_target(true, "api.openai.com"));
}

TEST(proxy_settings, urls_with_credentials_ports_and_ipv6) {
    auto p = proxy_settings::from_values("http://us%3Aer:p%40ss@proxy.internal:3128/", "", "");
    auto e = p.for_target(true, "api.openai.com");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->host, "proxy.internal");
    EXPECT_EQ(e->port, 3128);
    EXPECT_EQ(e->authorization, "Basic dXM6ZXI6cEBzcw==");  // base64("us:er:p@ss")
    e = proxy_settings::from_values("proxy.internal", "", "").for_target(true, "x");
    EXPECT_EQ(e->port, 1080) << "libcurl's default";
    e = proxy_settings::from_values("http://[::1]:3128", "", "").for_target(true, "x");
    EXPECT_EQ(e->host, "::1");
    EXPECT_EQ(e->port, 3128);
    EXPECT_TRUE(e->authorization.empty());
}

TEST(proxy_settings, unusable_proxies_are_named) {
    EXPECT_NE(proxy_settings::from_values("https://proxy:443", "", "").problem(true)->find("https://"), std::string::npos);
    EXPECT_NE(proxy_settings::from_values("socks5h://proxy:1080", "", "").problem(true)->find("socks5h"), std::string::npos);
    EXPECT_TRUE(proxy_settings::from_values("http://proxy:99999", "", "").problem(true));
    EXPECT_TRUE(proxy_settings::from_values("http://:3128", "", "").problem(true));
    EXPECT_FALSE(proxy_settings::from_values("http://proxy:3128", "", "").problem(true));
    EXPECT_FALSE(proxy_settings::from_values("", "", "").problem(true));
}

TEST(proxy_settings, no_proxy_matches_names_suffixes_addresses_and_blocks) {
    const auto p = proxy_settings::from_values("http://proxy:3128", "", "localhost, .internal,example.com:443,10.0.0.0/8,::1");
    EXPECT_TRUE(p.bypassed("localhost"));
    EXPECT_TRUE(p.bypassed("LOCALHOST"));
    EXPECT_TRUE(p.bypassed("api.internal"));
    EXPECT_TRUE(p.bypassed("internal"));
    EXPECT_TRUE(p.bypassed("example.com"));
    EXPECT_TRUE(p.bypassed("www.example.com"));
    EXPECT_FALSE(p.bypassed("notexample.com")) << "suffixes match on a dot";
    EXPECT_TRUE(p.bypassed("10.1.2.3"));
    EXPECT_FALSE(p.bypassed("11.1.2.3"));
    EXPECT_TRUE(p.bypassed("::1"));
    EXPECT_TRUE(p.bypassed("[::1]"));
    EXPECT_FALSE(p.bypassed("api.openai.com"));
    EXPECT_FALSE(p.for_target(true, "api.internal"));
    EXPECT_TRUE(p.for_target(true, "api.openai.com"));
    EXPECT_TRUE(proxy_settings::from_values("http://proxy:3128", "", "*").bypassed("anything"));
}

}  // namespace
}  // namespace voice_broker
