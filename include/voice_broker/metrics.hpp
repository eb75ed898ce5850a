// metrics: counters, gauges and histograms for GET /metrics (Prometheus text format).
// Lock-free atomics, so any thread may record; the server owns the one instance.
#pragma once

#include "voice_broker/end_reason.hpp"
#include "voice_broker/token_usage.hpp"
#include "voice_broker/usd_amount.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace voice_broker {

class histogram {
public:
    explicit histogram(std::vector<double> upper_bounds);
    void observe(double value);
    void render(std::string& out, std::string_view name, std::string_view help) const;

private:
    std::vector<double> bounds_;
    std::vector<std::atomic<std::uint64_t>> buckets_;
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_micros_{0};
};

class metrics {
public:
    metrics();

    std::atomic<std::int64_t> active_sessions{0};
    std::atomic<std::int64_t> queue_length{0};
    std::atomic<std::int64_t> store_entries{0};
    std::atomic<std::int64_t> websocket_clients{0};
    std::atomic<std::int64_t> open_connections{0};
    std::atomic<std::uint64_t> admissions{0};
    std::atomic<std::uint64_t> warnings_sent{0};
    std::atomic<std::uint64_t> websocket_dropped_slow{0};
    std::atomic<std::uint64_t> connections_rejected{0};
    std::array<std::atomic<std::uint64_t>, all_end_reasons.size()> ends_by_reason{};  // index: end_reason
    std::array<std::atomic<std::uint64_t>, 600> requests_by_status{};
    histogram queue_wait_seconds;
    // Upstream (OpenAI)
    std::atomic<std::uint64_t> tokens_minted{0};
    std::atomic<std::uint64_t> hangups_sent{0};
    std::atomic<std::uint64_t> hangups_failed{0};
    std::array<std::atomic<std::uint64_t>, 600> upstream_errors_by_status{};
    std::atomic<std::uint64_t> upstream_timeouts{0};
    histogram mint_latency_seconds;
    // The shared store (redis mode; the memory store is always up)
    std::string instance_id;  // set once at start, before any render
    std::atomic<std::int64_t> store_up{1};
    std::atomic<std::uint64_t> store_errors{0};
    std::atomic<std::int64_t> instances_alive{1};
    // Replicas each admitting write waits for now: REDIS_WAIT_REPLICAS, or fewer while the
    // sentinels could promote fewer (0 in memory mode and without durable admissions).
    std::atomic<std::int64_t> store_durable_replicas{0};
    // The cost guard (docs/COST.md).  Money in picodollars, rendered as dollars.
    enum class cost_kind { real, estimated };
    // [input][text, audio, cached_text, cached_audio], [output][text, audio]
    std::array<std::atomic<std::uint64_t>, 4> input_tokens{};
    std::array<std::atomic<std::uint64_t>, 2> output_tokens{};
    std::array<std::atomic<std::uint64_t>, 2> cost_picodollars{};        // counter, by cost_kind
    std::array<std::atomic<std::int64_t>, 2> today_cost_picodollars{};   // gauge, by cost_kind
    std::array<std::atomic<std::int64_t>, 2> budget_picodollars{};       // gauge, [day, month]; 0: off
    std::array<std::atomic<std::int64_t>, 2> budget_spent_picodollars{}; // gauge, [day, month]
    std::atomic<std::int64_t> budget_exhausted{0};        // 1 while no admission fits the budget
    std::atomic<std::int64_t> upstream_quota_paused{0};   // 1 while admissions pause for insufficient_quota
    std::atomic<std::int64_t> operator_paused{0};         // 1 while the operator's pause holds admissions
    std::atomic<std::int64_t> sideband_connections{0};
    std::atomic<std::uint64_t> sideband_failures{0};
    std::atomic<std::uint64_t> session_updates_reverted{0};
    std::atomic<std::uint64_t> wrap_ups_sent{0};

    void count_request(unsigned status);
    // Adds one response's (or transcription's) tokens.  Image tokens have no series of their own.
    void count_tokens(const token_usage& usage);
    void add_cost(cost_kind kind, usd_amount amount);
    void set_today_cost(cost_kind kind, usd_amount amount);
    // day: index 0, month: index 1.  A zero budget means off.
    void set_budget(int period, usd_amount budget, usd_amount spent);
    std::string render() const;

private:
    void render_cost(std::string& out) const;

public:
};

}  // namespace voice_broker
