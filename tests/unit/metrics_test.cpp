// Unit tests for metrics::render: the Prometheus text format the /metrics endpoint serves.
#include "voice_broker/metrics.hpp"

#include <gtest/gtest.h>

#include <map>
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

TEST(metrics, every_family_has_help_type_and_a_value) {
    metrics m;
    const auto text = m.render();
    for (const char* family :
         {"voice_broker_active_sessions gauge", "voice_broker_queue_length gauge", "voice_broker_store_entries gauge",
          "voice_broker_websocket_clients gauge",
          "voice_broker_open_connections gauge", "voice_broker_admissions_total counter",
          "voice_broker_warnings_sent_total counter", "voice_broker_websocket_slow_dropped_total counter",
          "voice_broker_connections_rejected_total counter", "voice_broker_log_lines_dropped_total counter", "voice_broker_session_ends_total counter",
          "voice_broker_queue_wait_seconds histogram", "voice_broker_http_requests_total counter",
          "voice_broker_tokens_minted_total counter", "voice_broker_hangups_sent_total counter",
          "voice_broker_hangups_failed_total counter", "voice_broker_upstream_timeouts_total counter",
          "voice_broker_upstream_errors_total counter", "voice_broker_mint_latency_seconds histogram"}) {
        EXPECT_TRUE(has_line(text, std::string("# TYPE ") + family)) << family;
        const std::string name = std::string(family).substr(0, std::string(family).find(' '));
        EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << name;
    }
    EXPECT_EQ(text.back(), '\n');
}

// The alert "admissions paused" (docker/prometheus/alerts.yml) watches one gauge for either pause.
TEST(metrics, admissions_paused_is_one_while_the_operator_or_a_quota_pause_holds_admissions) {
    metrics m;
    EXPECT_TRUE(has_line(m.render(), "voice_broker_admissions_paused 0"));
    EXPECT_TRUE(has_line(m.render(), "# TYPE voice_broker_admissions_paused gauge"));
    m.operator_paused = 1;
    EXPECT_TRUE(has_line(m.render(), "voice_broker_admissions_paused 1"));
    m.operator_paused = 0;
    m.upstream_quota_paused = 1;
    EXPECT_TRUE(has_line(m.render(), "voice_broker_admissions_paused 1"));
    m.upstream_quota_paused = 0;
    EXPECT_TRUE(has_line(m.render(), "voice_broker_admissions_paused 0"));
}

TEST(metrics, values_and_labels) {
    metrics m;
    m.active_sessions = 2;
    m.queue_length = 7;
    m.admissions += 3;
    m.ends_by_reason[0] += 4;  // expired
    m.ends_by_reason[3] += 1;  // abandoned
    m.count_request(200);
    m.count_request(200);
    m.count_request(503);
    m.count_request(700);  // out of range: ignored, not a crash
    m.upstream_errors_by_status[429] += 1;
    const auto text = m.render();
    EXPECT_TRUE(has_line(text, "voice_broker_active_sessions 2"));
    EXPECT_TRUE(has_line(text, "voice_broker_queue_length 7"));
    EXPECT_TRUE(has_line(text, "voice_broker_admissions_total 3"));
    EXPECT_TRUE(has_line(text, "voice_broker_session_ends_total{reason=\"expired\"} 4"));
    EXPECT_TRUE(has_line(text, "voice_broker_session_ends_total{reason=\"left\"} 0"));
    EXPECT_TRUE(has_line(text, "voice_broker_session_ends_total{reason=\"abandoned\"} 1"));
    EXPECT_TRUE(has_line(text, "voice_broker_session_ends_total{reason=\"shutdown\"} 0"));
    EXPECT_TRUE(has_line(text, "voice_broker_http_requests_total{status=\"200\"} 2"));
    EXPECT_TRUE(has_line(text, "voice_broker_http_requests_total{status=\"503\"} 1"));
    EXPECT_FALSE(has_line(text, "voice_broker_http_requests_total{status=\"404\"} 0")) << "statuses never seen are left out";
    EXPECT_TRUE(has_line(text, "voice_broker_upstream_errors_total{status=\"429\"} 1"));
}

TEST(metrics, histograms_are_cumulative) {
    metrics m;
    m.queue_wait_seconds.observe(3);
    m.queue_wait_seconds.observe(45);
    m.queue_wait_seconds.observe(5000);
    const auto text = m.render();
    EXPECT_TRUE(has_line(text, "voice_broker_queue_wait_seconds_bucket{le=\"1\"} 0"));
    EXPECT_TRUE(has_line(text, "voice_broker_queue_wait_seconds_bucket{le=\"5\"} 1"));
    EXPECT_TRUE(has_line(text, "voice_broker_queue_wait_seconds_bucket{le=\"60\"} 2"));
    EXPECT_TRUE(has_line(text, "voice_broker_queue_wait_seconds_bucket{le=\"3600\"} 2"));
    EXPECT_TRUE(has_line(text, "voice_broker_queue_wait_seconds_bucket{le=\"+Inf\"} 3"));
    EXPECT_TRUE(has_line(text, "voice_broker_queue_wait_seconds_count 3"));
    EXPECT_TRUE(has_line(text, "voice_broker_queue_wait_seconds_sum 5048"));
    EXPECT_TRUE(has_line(text, "voice_broker_mint_latency_seconds_bucket{le=\"0.005\"} 0"));
}

TEST(metrics, every_sample_line_is_name_optional_labels_and_a_number) {
    metrics m;
    m.count_request(404);
    m.mint_latency_seconds.observe(0.2);
    std::istringstream in(m.render());
    int samples = 0;
    for (std::string line; std::getline(in, line);) {
        ASSERT_FALSE(line.empty());
        if (line[0] == '#') continue;
        ++samples;
        const auto space = line.rfind(' ');
        ASSERT_NE(space, std::string::npos) << line;
        const auto value = line.substr(space + 1);
        char* end = nullptr;
        std::strtod(value.c_str(), &end);
        EXPECT_EQ(*end, '\0') << line;
        EXPECT_EQ(line.rfind("voice_broker_", 0), 0u) << line;
    }
    EXPECT_GT(samples, 30);
}

}  // namespace
}  // namespace voice_broker
