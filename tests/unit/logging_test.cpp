// Unit tests for logging: the line formats, the last-line-of-defence redaction of configured
// secrets, and redact_query for targets that carry a ticket.
#include "voice_broker/logging.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace voice_broker {
namespace {

class logging_test : public ::testing::Test {
protected:
    std::ostringstream out;
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();

    void use(log_format style, const std::string& level, std::vector<std::string> secrets) {
        setup_logging(style, level, std::move(secrets), std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
    }
    // Other tests log too: never leave them a logger that writes into this test's stream.
    void TearDown() override { spdlog::set_default_logger(previous); }
};

TEST_F(logging_test, a_configured_secret_is_redacted_wherever_it_appears) {
    use(log_format::text, "info", {"live-secret-0123456789abcdef", "admin-token-xyz"});
    spdlog::info("calling upstream with live-secret-0123456789abcdef and again live-secret-0123456789abcdef");
    spdlog::warn("admin header was admin-token-xyz");
    const auto text = out.str();
    EXPECT_EQ(text.find("live-secret-0123456789abcdef"), std::string::npos) << text;
    EXPECT_EQ(text.find("admin-token-xyz"), std::string::npos) << text;
    EXPECT_NE(text.find("calling upstream with [redacted] and again [redacted]"), std::string::npos) << text;
    EXPECT_NE(text.find("admin header was [redacted]"), std::string::npos) << text;
}

TEST_F(logging_test, text_lines_carry_time_level_and_message) {
    use(log_format::text, "info", {});
    spdlog::info("hello {}", 42);
    const auto line = out.str();
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    EXPECT_NE(line.find(" info hello 42"), std::string::npos) << line;
    EXPECT_EQ(line[4], '-');
    EXPECT_NE(line.find("Z info"), std::string::npos) << "an ISO 8601 UTC time first: " << line;
}

TEST_F(logging_test, json_lines_are_one_object_each_and_redacted) {
    use(log_format::json, "info", {"live-secret-0123456789abcdef"});
    spdlog::info("key \"live-secret-0123456789abcdef\" in quotes");
    spdlog::error("second");
    std::istringstream lines(out.str());
    std::string first, second;
    std::getline(lines, first);
    std::getline(lines, second);
    const auto a = nlohmann::json::parse(first);
    EXPECT_EQ(a["level"], "info");
    EXPECT_EQ(a["msg"], "key \"[redacted]\" in quotes");
    EXPECT_TRUE(a["time"].is_string());
    EXPECT_EQ(nlohmann::json::parse(second)["level"], "error");
}

TEST_F(logging_test, the_level_filters_lines) {
    use(log_format::text, "warn", {});
    spdlog::info("quiet");
    spdlog::warn("loud");
    EXPECT_EQ(out.str().find("quiet"), std::string::npos);
    EXPECT_NE(out.str().find("loud"), std::string::npos);
}

TEST_F(logging_test, empty_and_very_short_secrets_do_not_mangle_every_line) {
    use(log_format::text, "info", {"", "a", "ab"});
    spdlog::info("a cab and a bab");
    EXPECT_NE(out.str().find("a cab and a bab"), std::string::npos) << out.str();
}

// A secret that occurs inside "[redacted]" itself (an ADMIN_TOKEN of "redacted", "acted",
// "dact", ...) must not be replaced forever: a formatter that searched again from the start of
// the mask would loop, growing the line until the process died.  The check runs in a child
// that SIGALRM ends after two seconds, so a regression fails instead of hanging the suite.
TEST(logging_death, a_secret_found_inside_the_replacement_text_does_not_hang) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            ::alarm(2);
            std::ostringstream out;
            setup_logging(log_format::text, "info", {"redacted"},
                          std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
            spdlog::info("the word redacted appears once");
            const bool ok = out.str().find("the word [redacted] appears once") != std::string::npos;
            std::_Exit(ok ? 0 : 3);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST(redact_query, masks_tickets_tokens_and_keys) {
    EXPECT_EQ(redact_query("/api/session/ws?ticket=AbCdEfGhIjKlMnOpQrStUv"), "/api/session/ws?ticket=[redacted]");
    EXPECT_EQ(redact_query("/x?a=1&ticket=t&b=2"), "/x?a=1&ticket=[redacted]&b=2");
    EXPECT_EQ(redact_query("/x?token=abc&key=def"), "/x?token=[redacted]&key=[redacted]");
    EXPECT_EQ(redact_query("/x?ticket"), "/x?ticket=[redacted]");
    EXPECT_EQ(redact_query("/api/session?action=status"), "/api/session?action=status");
    EXPECT_EQ(redact_query("/plain/path"), "/plain/path");
    EXPECT_EQ(redact_query("/x?tickets=ok"), "/x?tickets=ok") << "only the exact names";
}

}  // namespace
}  // namespace voice_broker
