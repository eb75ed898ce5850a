// Unit tests for the cost guard's metrics: the exact names and labels the dashboards and alert
// rules use, and dollars rendered exactly from picodollars.
#include "voice_broker/metrics.hpp"
#include "voice_broker/price_table.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace voice_broker {
namespace {

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        if (l == line) return true;
    }
    return false;
}

TEST(cost_metrics, every_family_has_help_type_and_its_series_at_zero) {
    metrics m;
    const auto text = m.render();
    for (const char* family :
         {"voice_broker_tokens_total counter", "voice_broker_cost_usd_total counter", "voice_broker_today_cost_usd gauge",
          "voice_broker_budget_usd gauge", "voice_broker_budget_spent_usd gauge", "voice_broker_budget_spent_ratio gauge",
          "voice_broker_budget_exhausted gauge", "voice_broker_upstream_quota_paused gauge",
          "voice_broker_sideband_connections gauge", "voice_broker_sideband_failures_total counter",
          "voice_broker_session_updates_reverted_total counter", "voice_broker_wrap_ups_sent_total counter"}) {
        EXPECT_TRUE(has_line(text, std::string("# TYPE ") + family)) << family;
        const std::string name = std::string(family).substr(0, std::string(family).find(' '));
        EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << name;
    }
    for (const char* series : {
             R"(voice_broker_tokens_total{direction="input",kind="text"} 0)",
             R"(voice_broker_tokens_total{direction="input",kind="audio"} 0)",
             R"(voice_broker_tokens_total{direction="input",kind="cached_text"} 0)",
             R"(voice_broker_tokens_total{direction="input",kind="cached_audio"} 0)",
             R"(voice_broker_tokens_total{direction="output",kind="text"} 0)",
             R"(voice_broker_tokens_total{direction="output",kind="audio"} 0)",
             R"(voice_broker_cost_usd_total{kind="real"} 0)",
             R"(voice_broker_cost_usd_total{kind="estimated"} 0)",
             R"(voice_broker_today_cost_usd{kind="real"} 0)",
             R"(voice_broker_today_cost_usd{kind="estimated"} 0)",
             R"(voice_broker_budget_usd{period="day"} 0)",
             R"(voice_broker_budget_usd{period="month"} 0)",
             R"(voice_broker_budget_spent_usd{period="day"} 0)",
             R"(voice_broker_budget_spent_usd{period="month"} 0)",
             R"(voice_broker_budget_spent_ratio{period="day"} 0)",
             R"(voice_broker_budget_spent_ratio{period="month"} 0)",
             "voice_broker_budget_exhausted 0",
             "voice_broker_upstream_quota_paused 0",
             "voice_broker_sideband_connections 0",
             "voice_broker_sideband_failures_total 0",
             "voice_broker_session_updates_reverted_total 0",
             "voice_broker_wrap_ups_sent_total 0",
             R"(voice_broker_session_ends_total{reason="idle"} 0)",
             R"(voice_broker_session_ends_total{reason="call_ended"} 0)",
         }) {
        EXPECT_TRUE(has_line(text, series)) << series;
    }
}

TEST(cost_metrics, tokens_and_dollars_add_up_exactly) {
    metrics m;
    token_usage u;
    u.text_input = 56;
    u.cached_text_input = 64;
    u.audio_input = 40;
    u.text_output = 12;
    u.audio_output = 48;
    const auto cost = price_table::defaults().find("gpt-realtime")->cost(u);
    for (int i = 0; i < 3; ++i) {
        m.count_tokens(u);
        m.add_cost(metrics::cost_kind::real, cost);
    }
    m.add_cost(metrics::cost_kind::estimated, usd_amount::from_dollars(0.3));
    m.add_cost(metrics::cost_kind::estimated, usd_amount{-5});  // never decreases a counter
    const auto text = m.render();
    EXPECT_TRUE(has_line(text, R"(voice_broker_tokens_total{direction="input",kind="text"} 168)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_tokens_total{direction="input",kind="cached_text"} 192)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_tokens_total{direction="input",kind="audio"} 120)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_tokens_total{direction="output",kind="audio"} 144)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_cost_usd_total{kind="real"} 0.0143808)")) << text;
    EXPECT_TRUE(has_line(text, R"(voice_broker_cost_usd_total{kind="estimated"} 0.3)"));
}

TEST(cost_metrics, budget_gauges_and_the_ratio) {
    metrics m;
    m.set_budget(0, usd_amount::from_dollars(20), usd_amount::from_dollars(16.5));
    m.set_budget(1, usd_amount{}, usd_amount::from_dollars(100));
    m.set_today_cost(metrics::cost_kind::real, usd_amount::from_dollars(16.25));
    m.set_today_cost(metrics::cost_kind::estimated, usd_amount::from_dollars(0.25));
    m.budget_exhausted = 1;
    m.upstream_quota_paused = 1;
    m.sideband_connections = 3;
    m.sideband_failures += 2;
    m.session_updates_reverted += 4;
    m.wrap_ups_sent += 5;
    m.ends_by_reason[static_cast<std::size_t>(end_reason::idle)] += 1;
    m.ends_by_reason[static_cast<std::size_t>(end_reason::call_ended)] += 2;
    const auto text = m.render();
    EXPECT_TRUE(has_line(text, R"(voice_broker_budget_usd{period="day"} 20)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_budget_spent_usd{period="day"} 16.5)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_budget_spent_ratio{period="day"} 0.825)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_budget_usd{period="month"} 0)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_budget_spent_usd{period="month"} 100)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_budget_spent_ratio{period="month"} 0)")) << "0 when the budget is off";
    EXPECT_TRUE(has_line(text, R"(voice_broker_today_cost_usd{kind="real"} 16.25)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_today_cost_usd{kind="estimated"} 0.25)"));
    EXPECT_TRUE(has_line(text, "voice_broker_budget_exhausted 1"));
    EXPECT_TRUE(has_line(text, "voice_broker_upstream_quota_paused 1"));
    EXPECT_TRUE(has_line(text, "voice_broker_sideband_connections 3"));
    EXPECT_TRUE(has_line(text, "voice_broker_sideband_failures_total 2"));
    EXPECT_TRUE(has_line(text, "voice_broker_session_updates_reverted_total 4"));
    EXPECT_TRUE(has_line(text, "voice_broker_wrap_ups_sent_total 5"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_session_ends_total{reason="idle"} 1)"));
    EXPECT_TRUE(has_line(text, R"(voice_broker_session_ends_total{reason="call_ended"} 2)"));
}

}  // namespace
}  // namespace voice_broker
