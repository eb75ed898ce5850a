// The real voice-broker binary as an operator runs it: flags, bad settings, start-up, health
// check, SIGHUP and SIGTERM.
#include "test_client.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <regex>

using namespace voice_broker::testing;

namespace {

settings_map base_env(const temp_dir& dir) {
    return {{"STATIC_DIR", make_static_site(dir).string()}, {"PORT", "0"}, {"THREADS", "1"},
            {"ASAN_OPTIONS", "detect_leaks=1"}};
}

std::uint16_t logged_port(subprocess& p) {
    const auto out = p.wait_for_output("listening on", 10s);
    if (!out) return 0;
    std::smatch m;
    static const std::regex re(R"(listening on https?://[0-9.]+:([0-9]+))");
    if (!std::regex_search(*out, m, re)) return 0;
    return static_cast<std::uint16_t>(std::stoi(m[1]));
}

}  // namespace

TEST(binary, help_lists_every_setting_with_defaults) {
    temp_dir dir;
    subprocess p(voice_broker_binary(), {"--help"}, {}, dir.path());
    ASSERT_EQ(p.wait_exit(10s), 0);
    const auto out = p.output();
    for (const auto* name : {"HOST", "PORT", "STATIC_DIR", "TLS_CERT_FILE", "LOG_FORMAT", "TRUSTED_PROXIES",
                             "SHUTDOWN_GRACE_SECONDS", "MAX_CONCURRENT_USERS", "MAX_SESSION_DURATION_MINUTES",
                             "SESSION_DURATION_SECONDS", "WARNING_SECONDS", "MAX_QUEUE_LENGTH", "ADMIN_TOKEN",
                             "OPENAI_API_KEY", "OPENAI_BASE_URL", "REALTIME_MODE", "COST_PER_MINUTE_USD"}) {
        EXPECT_NE(out.find(name), std::string::npos) << name;
    }
    EXPECT_NE(out.find("[127.0.0.1]"), std::string::npos);
}

TEST(binary, version) {
    temp_dir dir;
    subprocess p(voice_broker_binary(), {"--version"}, {}, dir.path());
    ASSERT_EQ(p.wait_exit(10s), 0);
    EXPECT_NE(p.output().find(std::string("voice-broker ") + VOICE_BROKER_VERSION), std::string::npos);
}

TEST(binary, check_config_names_the_bad_key_and_fails) {
    struct bad {
        const char* key;
        const char* value;
    };
    for (const auto& [key, value] : {bad{"MAX_SESSION_DURATION_MINUTES", "-5"}, bad{"MAX_SESSION_DURATION_MINUTES", "five"},
                                     bad{"PORT", "70000"}, bad{"REALTIME_MODE", "carrier-pigeon"},
                                     bad{"TLS_CERT_FILE", "/nonexistent/cert.pem"}, bad{"LOG_FORMAT", "xml"}}) {
        temp_dir dir;
        auto env = base_env(dir);
        env[key] = value;
        if (std::string(key) == "TLS_CERT_FILE") env["TLS_KEY_FILE"] = "/nonexistent/key.pem";
        subprocess p(voice_broker_binary(), {"--check-config"}, env, dir.path());
        EXPECT_EQ(p.wait_exit(10s), 1) << key;
        const auto out = p.output();
        EXPECT_NE(out.find(key), std::string::npos) << out;
        EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one clear line: " << out;
    }
    temp_dir dir;
    subprocess ok(voice_broker_binary(), {"--check-config"}, base_env(dir), dir.path());
    EXPECT_EQ(ok.wait_exit(10s), 0) << ok.output();
}

TEST(binary, invalid_value_stops_start_up) {
    temp_dir dir;
    auto env = base_env(dir);
    env["MAX_CONCURRENT_USERS"] = "-1";
    subprocess p(voice_broker_binary(), {}, env, dir.path());
    EXPECT_EQ(p.wait_exit(10s), 1);
    EXPECT_NE(p.output().find("MAX_CONCURRENT_USERS"), std::string::npos);
}

TEST(binary, missing_named_config_file_is_an_error_but_a_missing_default_is_fine) {
    temp_dir dir;
    subprocess named(voice_broker_binary(), {"--check-config", "--config", "nope.json"}, base_env(dir), dir.path());
    EXPECT_EQ(named.wait_exit(10s), 1);
    EXPECT_NE(named.output().find("nope.json"), std::string::npos);
}

TEST(binary, flags_beat_environment_which_beats_env_files_and_the_config_file) {
    temp_dir dir;
    dir.write("config/session-limits.json",
              R"({"SESSION_LIMITS":{"MAX_SESSION_DURATION_MINUTES":7},"USER_LIMITS":{"MAX_CONCURRENT_USERS":4}})");
    dir.write(".env", "MAX_CONCURRENT_USERS=5\nMAX_QUEUE_LENGTH=11\n");
    dir.write(".env.local", "MAX_QUEUE_LENGTH=12\n");
    auto env = base_env(dir);
    env["MAX_QUEUE_LENGTH"] = "13";
    subprocess p(voice_broker_binary(), {"--max-queue-length", "14"}, env, dir.path());
    const auto port = logged_port(p);
    ASSERT_NE(port, 0) << p.output();
    const auto stats = fetch(port, "GET", "/api/session?action=stats").json();
    EXPECT_EQ(stats["maxQueueLength"], 14);      // flag
    EXPECT_EQ(stats["maxConcurrentUsers"], 5);   // .env over the config file
    EXPECT_EQ(stats["sessionDurationMinutes"], 7.0);  // config file over the default
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(10s), 0);
}

TEST(binary, starts_on_a_free_port_serves_and_stops_cleanly_on_sigterm) {
    temp_dir dir;
    subprocess p(voice_broker_binary(), {}, base_env(dir), dir.path());
    const auto port = logged_port(p);
    ASSERT_NE(port, 0) << p.output();
    EXPECT_EQ(fetch(port, "GET", "/").status, 200u);
    EXPECT_EQ(fetch(port, "GET", "/api/health").json()["status"], "ok");

    auto env = base_env(dir);
    env["PORT"] = std::to_string(port);
    subprocess probe(voice_broker_binary(), {"--healthcheck"}, env, dir.path());
    EXPECT_EQ(probe.wait_exit(10s), 0) << probe.output();

    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(10s), 0) << p.output();
    EXPECT_NE(p.output().find("stopped"), std::string::npos);

    subprocess dead(voice_broker_binary(), {"--healthcheck"}, env, dir.path());
    EXPECT_EQ(dead.wait_exit(10s), 1);
}

TEST(binary, sighup_reloads_limits) {
    temp_dir dir;
    dir.write(".env", "MAX_CONCURRENT_USERS=1\n");
    subprocess p(voice_broker_binary(), {}, base_env(dir), dir.path());
    const auto port = logged_port(p);
    ASSERT_NE(port, 0) << p.output();
    dir.write(".env", "MAX_CONCURRENT_USERS=3\n");
    p.signal(SIGHUP);
    ASSERT_TRUE(p.wait_for_output("reloaded", 10s)) << p.output();
    ASSERT_TRUE(p.wait_for_output("session limits reloaded", 10s)) << p.output();
    EXPECT_EQ(fetch(port, "GET", "/api/session?action=stats").json()["maxConcurrentUsers"], 3);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(10s), 0);
}

TEST(binary, self_signed_tls_and_json_logs) {
    temp_dir dir;
    auto env = base_env(dir);
    env["LOG_FORMAT"] = "json";
    subprocess p(voice_broker_binary(), {"--self-signed"}, env, dir.path());
    const auto port = logged_port(p);
    ASSERT_NE(port, 0) << p.output();
    http_client c(port, {.enabled = true});
    EXPECT_EQ(c.get("/api/health").status, 200u);
    p.signal(SIGTERM);
    ASSERT_EQ(p.wait_exit(10s), 0);
    std::istringstream lines(p.output());
    std::string line;
    int json_lines = 0;
    while (std::getline(lines, line)) {
        if (line.empty()) continue;
        const auto doc = nlohmann::json::parse(line, nullptr, false);
        EXPECT_TRUE(doc.is_object() && doc.contains("time") && doc.contains("level") && doc.contains("msg")) << line;
        ++json_lines;
    }
    EXPECT_GE(json_lines, 3);
}

TEST(binary, running_out_of_file_descriptors_backs_off_and_recovers) {
    temp_dir dir;
    auto env = base_env(dir);
    // With no descriptor left, the sanitizers' own runtime cannot read /proc/self/maps: UBSan's
    // vptr check then reports every virtual call as invalid, and LeakSanitizer cannot run.
    // Those two checks are switched off for this process only.
    const auto suppressions = dir.write("ubsan.supp", "vptr_check:*\n");
    env["UBSAN_OPTIONS"] = "suppressions=" + suppressions.string();
    env["ASAN_OPTIONS"] = "detect_leaks=0";
    subprocess p("/bin/sh", {"-c", "ulimit -n 64 && exec " + voice_broker_binary()}, env, dir.path());
    const auto port = logged_port(p);
    ASSERT_NE(port, 0) << p.output();
    {
        std::vector<std::unique_ptr<http_client>> hogs;
        for (int i = 0; i < 80; ++i) hogs.push_back(std::make_unique<http_client>(port));  // the kernel accepts them
        ASSERT_TRUE(p.wait_for_output("pausing new connections", 10s)) << p.output();
    }
    // Once those close, the server serves again: it kept accepting, without spinning.
    bool served = false;
    for (int attempt = 0; attempt < 50 && !served; ++attempt) {
        try {
            served = fetch(port, "GET", "/api/health").status == 200;
        } catch (const std::exception&) {
        }
    }
    EXPECT_TRUE(served);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(15s), 0) << p.output();
}
