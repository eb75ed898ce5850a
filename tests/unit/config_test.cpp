// Unit tests for load_config: every layer, their precedence, the config file's shapes, and that
// every bad value stops start-up with a message naming the key (and never a secret).
#include "voice_broker/config.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using voice_broker::testing::temp_dir;
using seconds = std::chrono::seconds;

class config_test : public ::testing::Test {
protected:
    temp_dir dir;
    std::map<std::string, std::string> env;  // the process environment, as the loader sees it

    std::variant<load_result, config_error> load(std::vector<std::string> args = {}) {
        load_request request;
        request.args = std::move(args);
        request.getenv = [this](const std::string& name) -> std::optional<std::string> {
            const auto it = env.find(name);
            if (it == env.end()) return std::nullopt;
            return it->second;
        };
        request.working_dir = dir.path().string();
        return load_config(request);
    }

    load_result load_ok(std::vector<std::string> args = {}) {
        auto r = load(std::move(args));
        if (const auto* e = std::get_if<config_error>(&r)) {
            ADD_FAILURE() << "unexpected config error: " << e->message;
            return {};
        }
        return std::get<load_result>(std::move(r));
    }

    std::string load_error(std::vector<std::string> args = {}) {
        auto r = load(std::move(args));
        if (std::holds_alternative<load_result>(r)) {
            ADD_FAILURE() << "the settings were accepted";
            return {};
        }
        return std::get<config_error>(r).message;
    }
};

// --- defaults -------------------------------------------------------------------------------

TEST_F(config_test, defaults_without_any_file_or_variable) {
    const auto r = load_ok();
    const auto& c = r.settings;
    EXPECT_EQ(r.action, run_action::serve);
    EXPECT_EQ(c.host, "127.0.0.1");
    EXPECT_EQ(c.port, 3000);
    EXPECT_EQ(c.session.max_concurrent_users, 1u);
    EXPECT_EQ(c.session.max_queue_length, 50u);
    EXPECT_EQ(c.session.session_duration, 300s);
    EXPECT_EQ(c.session.warnings, (std::vector<seconds>{180s, 120s, 60s}));
    EXPECT_EQ(c.session.heartbeat_timeout, 30s);
    EXPECT_EQ(c.session.admission_grace, 20s);
    EXPECT_EQ(c.openai.mode, realtime_mode::token);
    EXPECT_EQ(c.openai.token_ttl, 60s);
    EXPECT_EQ(c.log_style, log_format::text);
    EXPECT_EQ(c.log_level, "info");
    EXPECT_TRUE(c.admin_token.empty());
    EXPECT_TRUE(c.openai.api_key.empty());
    EXPECT_TRUE(c.config_file.empty()) << "no config file was read";
    EXPECT_FALSE(c.tls_enabled());
    ASSERT_EQ(c.trusted_proxies.size(), 2u);
    EXPECT_TRUE(c.trusted_proxies[0].contains("127.0.0.1"));
    EXPECT_TRUE(c.trusted_proxies[1].contains("::1"));
    EXPECT_EQ(c.static_dir, (dir.path() / "static").lexically_normal().string());
    EXPECT_TRUE(std::any_of(r.notes.begin(), r.notes.end(),
                            [](const std::string& n) { return n.find("OPENAI_API_KEY") != std::string::npos; }))
        << "a missing API key is worth a note at start-up";
}

// --- precedence -------------------------------------------------------------------------------

TEST_F(config_test, flags_beat_environment_beats_env_local_beats_env_beats_file_beats_default) {
    dir.write("config/session-limits.json", R"({"MAX_CONCURRENT_USERS": 2})");
    dir.write(".env", "MAX_CONCURRENT_USERS=3\n");
    dir.write(".env.local", "MAX_CONCURRENT_USERS=4\n");
    env["MAX_CONCURRENT_USERS"] = "5";
    EXPECT_EQ(load_ok({"--max-concurrent-users", "6"}).settings.session.max_concurrent_users, 6u);
    EXPECT_EQ(load_ok().settings.session.max_concurrent_users, 5u);
    env.clear();
    EXPECT_EQ(load_ok().settings.session.max_concurrent_users, 4u);
    std::filesystem::remove(dir / ".env.local");
    EXPECT_EQ(load_ok().settings.session.max_concurrent_users, 3u);
    std::filesystem::remove(dir / ".env");
    EXPECT_EQ(load_ok().settings.session.max_concurrent_users, 2u);
    std::filesystem::remove(dir / "config/session-limits.json");
    EXPECT_EQ(load_ok().settings.session.max_concurrent_users, 1u);
}

TEST_F(config_test, each_layer_only_overrides_the_keys_it_sets) {
    dir.write("config/session-limits.json", R"({"MAX_QUEUE_LENGTH": 7, "PORT": 4000})");
    dir.write(".env", "PORT=4001\nHEARTBEAT_TIMEOUT_SECONDS=44\n");
    env["HEARTBEAT_TIMEOUT_SECONDS"] = "45";
    const auto c = load_ok({"--admission-grace-seconds=9"}).settings;
    EXPECT_EQ(c.session.max_queue_length, 7u);
    EXPECT_EQ(c.port, 4001);
    EXPECT_EQ(c.session.heartbeat_timeout, 45s);
    EXPECT_EQ(c.session.admission_grace, 9s);
}

TEST_F(config_test, flags_take_the_value_after_an_equals_sign_or_as_the_next_argument) {
    const auto c = load_ok({"--port=4100", "--max-queue-length", "3", "--self-signed"}).settings;
    EXPECT_EQ(c.port, 4100);
    EXPECT_EQ(c.session.max_queue_length, 3u);
    EXPECT_TRUE(c.tls_self_signed);
    EXPECT_TRUE(c.tls_enabled());
}

TEST_F(config_test, seconds_settings_override_the_minute_settings_whatever_their_layer) {
    env["SESSION_DURATION_SECONDS"] = "30";
    env["WARNING_SECONDS"] = "20,10";
    const auto c = load_ok({"--max-session-duration-minutes", "2", "--warning-minutes", "1"}).settings;
    EXPECT_EQ(c.session.session_duration, 30s);
    EXPECT_EQ(c.session.warnings, (std::vector<seconds>{20s, 10s}));
}

TEST_F(config_test, minute_settings_are_converted_to_seconds) {
    env["MAX_SESSION_DURATION_MINUTES"] = "2.5";
    env["WARNING_MINUTES"] = "1, 0.5 ,2,1";
    const auto c = load_ok().settings;
    EXPECT_EQ(c.session.session_duration, 150s);
    EXPECT_EQ(c.session.warnings, (std::vector<seconds>{120s, 60s, 30s})) << "sorted, largest first, no repeats";
}

TEST_F(config_test, an_empty_warning_list_means_no_warnings) {
    env["WARNING_MINUTES"] = "";
    EXPECT_TRUE(load_ok().settings.session.warnings.empty());
}

TEST_F(config_test, the_environment_is_not_overridden_by_env_files) {
    env["PORT"] = "5000";
    dir.write(".env.local", "PORT=5001\n");
    dir.write(".env", "PORT=5002\n");
    EXPECT_EQ(load_ok().settings.port, 5000);
}

TEST_F(config_test, unknown_env_file_keys_are_noted_not_fatal) {
    dir.write(".env", "MAX_USERZ=3\nSOMETHING_ELSE=1\n");
    const auto r = load_ok();
    EXPECT_TRUE(std::any_of(r.notes.begin(), r.notes.end(),
                            [](const std::string& n) { return n.find("MAX_USERZ") != std::string::npos; }));
}

// --- the config file ----------------------------------------------------------------------------

TEST_F(config_test, config_file_with_sections_as_the_earlier_product_wrote_it) {
    dir.write("config/session-limits.json", R"({
        "$comment": "limits for the demo",
        "SESSION_LIMITS": {"MAX_SESSION_DURATION_MINUTES": 5, "WARNING_MINUTES": [3, 2, 1]},
        "USER_LIMITS": {"MAX_CONCURRENT_USERS": 1, "MAX_QUEUE_LENGTH": 12}
    })");
    const auto c = load_ok().settings;
    EXPECT_EQ(c.session.session_duration, 300s);
    EXPECT_EQ(c.session.warnings, (std::vector<seconds>{180s, 120s, 60s}));
    EXPECT_EQ(c.session.max_concurrent_users, 1u);
    EXPECT_EQ(c.session.max_queue_length, 12u);
    EXPECT_EQ(c.config_file, (dir / "config/session-limits.json").string());
}

TEST_F(config_test, config_file_with_flat_keys_and_json_types) {
    dir.write("config/session-limits.json",
              R"({"MAX_CONCURRENT_USERS": 3, "TLS_SELF_SIGNED": true, "COST_PER_MINUTE_USD": 0.25, "LOG_FORMAT": "json"})");
    const auto c = load_ok().settings;
    EXPECT_EQ(c.session.max_concurrent_users, 3u);
    EXPECT_TRUE(c.tls_self_signed);
    EXPECT_DOUBLE_EQ(c.cost_per_minute_usd, 0.25);
    EXPECT_EQ(c.log_style, log_format::json);
}

TEST_F(config_test, an_unknown_key_in_the_config_file_is_an_error_naming_it) {
    dir.write("config/session-limits.json", R"({"USER_LIMITS": {"MAX_CONCURENT_USERS": 2}})");
    const auto message = load_error();
    EXPECT_NE(message.find("MAX_CONCURENT_USERS"), std::string::npos) << message;
}

TEST_F(config_test, a_config_file_that_is_not_a_json_object_is_an_error) {
    dir.write("config/session-limits.json", R"({"MAX_CONCURRENT_USERS": )");
    EXPECT_NE(load_error().find("session-limits.json"), std::string::npos);
    dir.write("config/session-limits.json", "[1, 2]");
    EXPECT_NE(load_error().find("session-limits.json"), std::string::npos);
}

TEST_F(config_test, the_config_file_can_be_named_by_flag_environment_or_env_file) {
    dir.write("limits-a.json", R"({"MAX_QUEUE_LENGTH": 11})");
    dir.write("limits-b.json", R"({"MAX_QUEUE_LENGTH": 22})");
    dir.write("limits-c.json", R"({"MAX_QUEUE_LENGTH": 33})");
    dir.write("config/session-limits.json", R"({"MAX_QUEUE_LENGTH": 44})");

    dir.write(".env", "CONFIG_FILE=limits-c.json\n");
    EXPECT_EQ(load_ok().settings.session.max_queue_length, 33u);
    env["CONFIG_FILE"] = "limits-b.json";
    EXPECT_EQ(load_ok().settings.session.max_queue_length, 22u);
    const auto r = load_ok({"--config", "limits-a.json"});
    EXPECT_EQ(r.settings.session.max_queue_length, 11u);
    EXPECT_EQ(r.settings.config_file, (dir / "limits-a.json").string()) << "relative to the working directory";
}

TEST_F(config_test, a_missing_named_config_file_is_an_error_a_missing_default_is_not) {
    load_ok();
    const auto message = load_error({"--config", "nowhere.json"});
    EXPECT_NE(message.find("nowhere.json"), std::string::npos) << message;
    env["CONFIG_FILE"] = "also-nowhere.json";
    EXPECT_NE(load_error().find("also-nowhere.json"), std::string::npos);
}

// --- invalid values -------------------------------------------------------------------------------

struct bad_value {
    const char* key;
    const char* value;
};

std::ostream& operator<<(std::ostream& os, const bad_value& b) { return os << b.key << "=" << b.value; }

class config_bad_value : public config_test, public ::testing::WithParamInterface<bad_value> {};

TEST_P(config_bad_value, from_the_environment_is_an_error_naming_the_key_and_its_source) {
    env[GetParam().key] = GetParam().value;
    const auto message = load_error();
    EXPECT_NE(message.find(GetParam().key), std::string::npos) << message;
    EXPECT_NE(message.find("environment"), std::string::npos) << message;
}

TEST_P(config_bad_value, from_a_flag_is_an_error_naming_the_key) {
    std::string flag = "--";
    for (const char* p = GetParam().key; *p; ++p) flag += *p == '_' ? '-' : static_cast<char>(std::tolower(*p));
    const auto message = load_error({flag + "=" + GetParam().value});
    EXPECT_NE(message.find(GetParam().key), std::string::npos) << message;
}

TEST_P(config_bad_value, from_the_config_file_is_an_error_naming_the_key) {
    dir.write("config/session-limits.json", std::string("{\"") + GetParam().key + "\": \"" + GetParam().value + "\"}");
    const auto message = load_error();
    EXPECT_NE(message.find(GetParam().key), std::string::npos) << message;
    EXPECT_NE(message.find("session-limits.json"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    every_kind, config_bad_value,
    ::testing::Values(bad_value{"MAX_SESSION_DURATION_MINUTES", "-5"}, bad_value{"MAX_SESSION_DURATION_MINUTES", "five"},
                      bad_value{"MAX_SESSION_DURATION_MINUTES", "0"}, bad_value{"MAX_SESSION_DURATION_MINUTES", "1441"},
                      bad_value{"MAX_SESSION_DURATION_MINUTES", "nan"}, bad_value{"SESSION_DURATION_SECONDS", "0"},
                      bad_value{"SESSION_DURATION_SECONDS", "1.5"}, bad_value{"PORT", "70000"}, bad_value{"PORT", "-1"},
                      bad_value{"PORT", "80x"}, bad_value{"MAX_CONCURRENT_USERS", "0"},
                      bad_value{"MAX_QUEUE_LENGTH", "-1"}, bad_value{"HEARTBEAT_TIMEOUT_SECONDS", "0"},
                      bad_value{"ADMISSION_GRACE_SECONDS", "x"}, bad_value{"WARNING_MINUTES", "3,two,1"},
                      bad_value{"WARNING_MINUTES", "-1"}, bad_value{"WARNING_SECONDS", "0"},
                      bad_value{"REALTIME_MODE", "websocket"}, bad_value{"LOG_FORMAT", "xml"},
                      bad_value{"LOG_LEVEL", "verbose"}, bad_value{"TRUSTED_PROXIES", "10.0.0.0/33"},
                      bad_value{"TRUSTED_PROXIES", "127.0.0.1,proxy.local"}, bad_value{"HOST", "example.com"},
                      bad_value{"OPENAI_BASE_URL", "ftp://api.openai.com"}, bad_value{"TLS_SELF_SIGNED", "maybe"},
                      bad_value{"COST_PER_MINUTE_USD", "-0.5"}, bad_value{"THREADS", "1000"},
                      bad_value{"OPENAI_TOKEN_TTL_SECONDS", "5"}, bad_value{"MAX_BODY_BYTES", "10"}),
    [](const auto& info) {
        std::string name = std::string(info.param.key) + "_" + std::to_string(info.index);
        return name;
    });

TEST_F(config_test, an_unreadable_tls_certificate_is_an_error_naming_the_key) {
    dir.write("tls/key.pem", std::string("-----BEGIN ") + "PRIVATE KEY-----\n");
    env["TLS_CERT_FILE"] = "tls/missing-cert.pem";
    env["TLS_KEY_FILE"] = "tls/key.pem";
    const auto message = load_error();
    EXPECT_NE(message.find("TLS_CERT_FILE"), std::string::npos) << message;
}

TEST_F(config_test, tls_needs_both_files) {
    dir.write("tls/cert.pem", "-----BEGIN CERTIFICATE-----\n");
    env["TLS_CERT_FILE"] = "tls/cert.pem";
    const auto message = load_error();
    EXPECT_NE(message.find("TLS_KEY_FILE"), std::string::npos) << message;
}

TEST_F(config_test, readable_tls_files_are_resolved_against_the_working_directory) {
    dir.write("tls/cert.pem", "-----BEGIN CERTIFICATE-----\n");
    dir.write("tls/key.pem", std::string("-----BEGIN ") + "PRIVATE KEY-----\n");
    env["TLS_CERT_FILE"] = "tls/cert.pem";
    env["TLS_KEY_FILE"] = "tls/key.pem";
    const auto c = load_ok().settings;
    EXPECT_TRUE(c.tls_enabled());
    EXPECT_EQ(c.tls_cert_file, (dir / "tls/cert.pem").string());
    EXPECT_EQ(c.tls_key_file, (dir / "tls/key.pem").string());
}

TEST_F(config_test, unknown_options_and_missing_values_are_errors) {
    EXPECT_NE(load_error({"--max-users", "3"}).find("--max-users"), std::string::npos);
    EXPECT_NE(load_error({"--port"}).find("--port"), std::string::npos);
}

// --- secrets ------------------------------------------------------------------------------------

constexpr const char* admin_secret = "admin-Secret-Value-0123456789";
constexpr const char* api_secret = "test-Secret-Key-9876543210";

void expect_no_secret(const std::string& message) {
    EXPECT_EQ(message.find(admin_secret), std::string::npos) << message;
    EXPECT_EQ(message.find(api_secret), std::string::npos) << message;
    EXPECT_EQ(message.find("Secret"), std::string::npos) << message;
}

TEST_F(config_test, secrets_are_read_from_every_layer) {
    dir.write(".env.local", std::string("OPENAI_API_KEY=") + api_secret + "\n");
    const auto c = load_ok({std::string("--admin-token=") + admin_secret}).settings;
    EXPECT_EQ(c.admin_token, admin_secret);
    EXPECT_EQ(c.openai.api_key, api_secret);
}

TEST_F(config_test, secrets_never_appear_in_an_error_message) {
    env["ADMIN_TOKEN"] = admin_secret;
    dir.write(".env.local", std::string("OPENAI_API_KEY=") + api_secret + "\n");

    env["PORT"] = "70000";
    expect_no_secret(load_error());
    env.erase("PORT");

    expect_no_secret(load_error({"--log-format", "xml", std::string("--openai-api-key=") + api_secret}));
    expect_no_secret(load_error({"--no-such-option", admin_secret}));
    expect_no_secret(load_error({std::string("--admin-tokn=") + admin_secret}));

    env["TLS_CERT_FILE"] = "missing.pem";
    env["TLS_KEY_FILE"] = "missing.pem";
    expect_no_secret(load_error());
    env.erase("TLS_CERT_FILE");
    env.erase("TLS_KEY_FILE");

    dir.write("config/session-limits.json",
              std::string(R"({"ADMIN_TOKEN": ")") + admin_secret + R"(", "MAX_QUEUE_LENGTH": "many"})");
    expect_no_secret(load_error());
    dir.write("config/session-limits.json", std::string(R"({"OPENAI_API_KEY": {"value": ")") + api_secret + R"("}})");
    expect_no_secret(load_error());
}

// The common typo of a space after "=" leaves the key as a stray argument: it must not be echoed.
TEST_F(config_test, a_stray_argument_that_is_a_secret_is_not_echoed) {
    expect_no_secret(load_error({"--openai-api-key=", api_secret}));
}

// --- actions and small things ---------------------------------------------------------------------

TEST_F(config_test, actions_from_the_command_line) {
    EXPECT_EQ(load_ok({"--help"}).action, run_action::help);
    EXPECT_EQ(load_ok({"-h"}).action, run_action::help);
    EXPECT_EQ(load_ok({"--version"}).action, run_action::version);
    EXPECT_EQ(load_ok({"--check-config"}).action, run_action::check_config);
    EXPECT_EQ(load_ok({"--healthcheck"}).action, run_action::healthcheck);
    env["PORT"] = "70000";
    EXPECT_EQ(load_ok({"--help"}).action, run_action::help) << "help works even with bad settings";
    EXPECT_FALSE(load_error({"--check-config"}).empty()) << "check-config validates";
}

TEST_F(config_test, localhost_trailing_slashes_and_relative_static_dir) {
    env["HOST"] = "localhost";
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9999//";
    env["STATIC_DIR"] = "public/../site";
    env["REALTIME_MODE"] = "relay";
    env["TRUSTED_PROXIES"] = "10.0.0.0/8, fd00::/8";
    const auto c = load_ok().settings;
    EXPECT_EQ(c.host, "127.0.0.1");
    EXPECT_EQ(c.openai.base_url, "http://127.0.0.1:9999");
    EXPECT_EQ(c.static_dir, (dir / "site").string());
    EXPECT_EQ(c.openai.mode, realtime_mode::relay);
    ASSERT_EQ(c.trusted_proxies.size(), 2u);
    EXPECT_TRUE(c.trusted_proxies[0].contains("10.20.30.40"));
    EXPECT_TRUE(c.trusted_proxies[1].contains("fd12::1"));
}

TEST_F(config_test, an_empty_trusted_proxies_list_trusts_nobody) {
    env["TRUSTED_PROXIES"] = "";
    EXPECT_TRUE(load_ok().settings.trusted_proxies.empty());
}

TEST_F(config_test, a_short_admin_token_is_noted) {
    env["ADMIN_TOKEN"] = "short";
    const auto r = load_ok();
    EXPECT_TRUE(std::any_of(r.notes.begin(), r.notes.end(),
                            [](const std::string& n) { return n.find("ADMIN_TOKEN") != std::string::npos; }));
}

TEST(config_help, lists_every_setting_with_its_default) {
    const auto text = help_text();
    for (const char* key : {"PORT", "MAX_CONCURRENT_USERS", "MAX_SESSION_DURATION_MINUTES", "WARNING_MINUTES",
                            "MAX_QUEUE_LENGTH", "ADMIN_TOKEN", "OPENAI_API_KEY", "REALTIME_MODE", "TRUSTED_PROXIES"}) {
        EXPECT_NE(text.find(key), std::string::npos) << key;
    }
    EXPECT_NE(text.find("[3000]"), std::string::npos);
}

}  // namespace
}  // namespace voice_broker
