// Unit tests for the cost guard's settings: defaults, --help, every bad value named with a clear
// message, the PRICES section of the config file, BUDGET_TIMEZONE loaded at start-up, DATA_DIR
// made absolute, and the notes for budgets too small for one session.
#include "voice_broker/call_monitor.hpp"
#include "voice_broker/config.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <variant>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;

class cost_config : public ::testing::Test {
protected:
    testing::temp_dir dir;
    std::map<std::string, std::string> env;

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
    load_result ok() {
        auto r = load();
        if (const auto* e = std::get_if<config_error>(&r)) {
            ADD_FAILURE() << e->message;
            return {};
        }
        return std::get<load_result>(std::move(r));
    }
    std::string error() {
        auto r = load();
        if (std::holds_alternative<load_result>(r)) {
            ADD_FAILURE() << "accepted";
            return {};
        }
        return std::get<config_error>(r).message;
    }
};

TEST_F(cost_config, defaults) {
    const auto c = ok().settings;
    EXPECT_TRUE(c.cost.sideband);
    EXPECT_EQ(c.cost.wrap_up, 30s);
    EXPECT_NE(c.cost.wrap_up_instructions_en.find("goodbye"), std::string::npos);
    EXPECT_NE(c.cost.wrap_up_instructions_ru.find("попрощайтесь"), std::string::npos);
    EXPECT_EQ(c.cost.silence_timeout, 0s);
    EXPECT_EQ(c.cost.call_lost_grace, 15s);
    EXPECT_EQ(c.openai.max_output_tokens, std::nullopt);
    EXPECT_EQ(c.cost.daily_budget_usd, 0);
    EXPECT_EQ(c.cost.monthly_budget_usd, 0);
    EXPECT_EQ(c.cost.budget_timezone, "UTC");
    EXPECT_EQ(c.cost.budget_zone.name(), "UTC");
    EXPECT_EQ(std::filesystem::path(c.store.data_dir), (dir.path() / "data").lexically_normal());
    EXPECT_EQ(c.cost.quota_pause, 300s);
    EXPECT_EQ(c.cost.prices, price_table::defaults());
}

TEST_F(cost_config, values_from_every_layer) {
    env = {{"SIDEBAND", "off"},
           {"WRAP_UP_SECONDS", "20"},
           {"WRAP_UP_INSTRUCTIONS", "Say bye."},
           {"SILENCE_TIMEOUT_SECONDS", "45"},
           {"CALL_LOST_GRACE_SECONDS", "5"},
           {"OPENAI_MAX_OUTPUT_TOKENS", "512"},
           {"DAILY_BUDGET_USD", "20"},
           {"MONTHLY_BUDGET_USD", "400.50"},
           {"DATA_DIR", "/var/lib/voice-broker"},
           {"QUOTA_PAUSE_SECONDS", "0"}};
    if (std::filesystem::exists("/usr/share/zoneinfo/Europe/Berlin")) env["BUDGET_TIMEZONE"] = "Europe/Berlin";
    const auto c = ok().settings;
    EXPECT_FALSE(c.cost.sideband);
    EXPECT_EQ(c.cost.wrap_up, 20s);
    EXPECT_EQ(c.cost.wrap_up_instructions_en, "Say bye.");
    EXPECT_EQ(c.cost.silence_timeout, 45s);
    EXPECT_EQ(c.cost.call_lost_grace, 5s);
    EXPECT_EQ(c.openai.max_output_tokens, 512);
    EXPECT_EQ(c.cost.daily_budget_usd, 20);
    EXPECT_EQ(c.cost.monthly_budget_usd, 400.5);
    EXPECT_EQ(c.store.data_dir, "/var/lib/voice-broker");
    EXPECT_EQ(c.cost.quota_pause, 0s);
    if (env.count("BUDGET_TIMEZONE")) {
        EXPECT_EQ(c.cost.budget_zone.name(), "Europe/Berlin");
        EXPECT_EQ(c.cost.budget_zone.offset_at(std::chrono::sys_days{std::chrono::year{2026} / 7 / 1}), 2h);
    }
}

TEST_F(cost_config, unlimited_output_can_be_written_inf) {
    env["OPENAI_MAX_OUTPUT_TOKENS"] = "inf";
    EXPECT_EQ(ok().settings.openai.max_output_tokens, std::nullopt);
}

struct bad {
    const char* key;
    const char* value;
    const char* says;
};

class cost_config_bad : public cost_config, public ::testing::WithParamInterface<bad> {};

TEST_P(cost_config_bad, is_refused_with_the_key_and_what_to_do) {
    env[GetParam().key] = GetParam().value;
    const auto message = error();
    EXPECT_NE(message.find(GetParam().key), std::string::npos) << message;
    EXPECT_NE(message.find(GetParam().says), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    every_setting, cost_config_bad,
    ::testing::Values(bad{"SIDEBAND", "maybe", "on or off"}, bad{"WRAP_UP_SECONDS", "-1", "whole number from 0"},
                      bad{"WRAP_UP_SECONDS", "30s", "whole number"}, bad{"WRAP_UP_INSTRUCTIONS", "", "WRAP_UP_SECONDS=0"},
                      bad{"SILENCE_TIMEOUT_SECONDS", "soon", "whole number"},
                      bad{"CALL_LOST_GRACE_SECONDS", "3601", "to 3600"},
                      bad{"OPENAI_MAX_OUTPUT_TOKENS", "0", "from 1 to 4096"},
                      bad{"OPENAI_MAX_OUTPUT_TOKENS", "5000", "from 1 to 4096"},
                      bad{"DAILY_BUDGET_USD", "-1", "dollars from 0"}, bad{"DAILY_BUDGET_USD", "ten", "dollars"},
                      bad{"MONTHLY_BUDGET_USD", "2000000", "to 1000000"},
                      bad{"BUDGET_TIMEZONE", "Mars/Olympus", "not a time zone"},
                      bad{"BUDGET_TIMEZONE", "../../etc/passwd", "IANA"}, bad{"BUDGET_TIMEZONE", "", "UTC"},
                      bad{"QUOTA_PAUSE_SECONDS", "-5", "whole number"}),
    [](const auto& info) { return std::string(info.param.key) + "_" + std::to_string(info.index); });

TEST_F(cost_config, the_price_section_of_the_config_file_overrides_the_built_in_prices) {
    dir.write("config/session-limits.json", R"({
      "SESSION_LIMITS": {"MAX_SESSION_DURATION_MINUTES": 5},
      "PRICES": {"$comment": "USD per 1M tokens",
                 "gpt-realtime": {"text_input": 5, "cached_text_input": 0.5, "text_output": 20,
                                  "audio_input": 40, "cached_audio_input": 2.5, "audio_output": 80}}})");
    const auto c = ok().settings;
    ASSERT_NE(c.cost.prices.find("gpt-realtime"), nullptr);
    EXPECT_EQ(c.cost.prices.find("gpt-realtime")->audio_output, 80'000'000);
    ASSERT_NE(c.cost.prices.find("gpt-realtime-mini"), nullptr);
    EXPECT_EQ(*c.cost.prices.find("gpt-realtime-mini"), *price_table::defaults().find("gpt-realtime-mini"));
}

TEST_F(cost_config, a_bad_price_section_stops_start_up_naming_the_model_and_key) {
    dir.write("config/session-limits.json", R"({"PRICES": {"gpt-realtime": {"text_input": "four"}}})");
    const auto message = error();
    EXPECT_NE(message.find("PRICES.gpt-realtime.text_input"), std::string::npos) << message;
    EXPECT_NE(message.find("session-limits.json"), std::string::npos) << message;
}

TEST_F(cost_config, the_shipped_config_file_loads_and_carries_the_default_prices) {
    const auto shipped = std::filesystem::path(VOICE_BROKER_SOURCE_DIR) / "config" / "session-limits.json";
    env["CONFIG_FILE"] = shipped.string();
    const auto c = ok().settings;
    EXPECT_EQ(c.cost.prices, price_table::defaults()) << "config/session-limits.json and the built-in table must agree";
}

TEST_F(cost_config, a_budget_below_one_session_is_noted) {
    env["DAILY_BUDGET_USD"] = "0.10";  // one 5-minute session at $0.06 costs $0.30
    const auto r = ok();
    bool noted = false;
    for (const auto& n : r.notes) noted = noted || n.find("DAILY_BUDGET_USD is less than one full session") != std::string::npos;
    EXPECT_TRUE(noted);
}

TEST_F(cost_config, the_monitor_gets_the_servers_session_values_and_timings) {
    env = {{"OPENAI_REALTIME_MODEL", "gpt-realtime-mini"}, {"OPENAI_VOICE", "cedar"}, {"OPENAI_INSTRUCTIONS", "Be kind."},
           {"OPENAI_MAX_OUTPUT_TOKENS", "200"}, {"WRAP_UP_SECONDS", "20"}, {"SILENCE_TIMEOUT_SECONDS", "40"},
           {"CALL_LOST_GRACE_SECONDS", "7"}};
    const auto m = make_call_monitor_settings(ok().settings);
    EXPECT_EQ(m.model, "gpt-realtime-mini");
    EXPECT_EQ(m.voice, "cedar");
    EXPECT_EQ(m.instructions, "Be kind.");
    EXPECT_EQ(m.max_output_tokens, 200);
    EXPECT_EQ(m.tools, nlohmann::json::array());
    EXPECT_EQ(m.transcription_model, "gpt-4o-mini-transcribe");
    EXPECT_EQ(m.wrap_up_before, 20s);
    EXPECT_EQ(m.silence_timeout, 40s);
    EXPECT_EQ(m.call_lost_grace, 7s);
    EXPECT_FALSE(m.wrap_up_en.empty());
    EXPECT_FALSE(m.wrap_up_ru.empty());
}

TEST(cost_config_help, lists_every_new_setting) {
    const auto text = help_text();
    for (const char* key : {"SIDEBAND", "WRAP_UP_SECONDS", "WRAP_UP_INSTRUCTIONS", "WRAP_UP_INSTRUCTIONS_RU",
                            "SILENCE_TIMEOUT_SECONDS", "CALL_LOST_GRACE_SECONDS", "OPENAI_MAX_OUTPUT_TOKENS",
                            "DAILY_BUDGET_USD", "MONTHLY_BUDGET_USD", "BUDGET_TIMEZONE", "DATA_DIR", "QUOTA_PAUSE_SECONDS"}) {
        EXPECT_NE(text.find(std::string("  ") + key + " "), std::string::npos) << key;
    }
}

}  // namespace
}  // namespace voice_broker
