// metrics: counters, gauges and histograms for GET /metrics (Prometheus text format).
// Lock-free atomics, so any thread may record; the server owns the one instance.
#pragma once

#include "voice_broker/end_reason.hpp"

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

    void count_request(unsigned status);
    std::string render() const;
};

}  // namespace voice_broker
