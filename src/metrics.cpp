#include "voice_broker/metrics.hpp"

#include <cstdio>

namespace voice_broker {

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(bounds_.size()) {}

void histogram::observe(double value) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        if (value <= bounds_[i]) buckets_[i].fetch_add(1, std::memory_order_relaxed);
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_micros_.fetch_add(static_cast<std::uint64_t>(value * 1e6), std::memory_order_relaxed);
}

namespace {
void line(std::string& out, std::string_view text) {
    out.append(text);
    out += '\n';
}
std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}
void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}
template <class T>
void scalar(std::string& out, std::string_view name, std::string_view type, std::string_view help, const T& value) {
    family(out, name, type, help);
    line(out, std::string(name) + ' ' + std::to_string(value.load()));
}
}  // namespace

void histogram::render(std::string& out, std::string_view name, std::string_view help) const {
    family(out, name, "histogram", help);
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        line(out, std::string(name) + "_bucket{le=\"" + number(bounds_[i]) + "\"} " + std::to_string(buckets_[i].load()));
    }
    line(out, std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(count_.load()));
    line(out, std::string(name) + "_sum " + number(static_cast<double>(sum_micros_.load()) / 1e6));
    line(out, std::string(name) + "_count " + std::to_string(count_.load()));
}

metrics::metrics()
    : queue_wait_seconds({1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600}),
      mint_latency_seconds({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}) {}

void metrics::count_request(unsigned status) {
    if (status < requests_by_status.size()) requests_by_status[status].fetch_add(1, std::memory_order_relaxed);
}

std::string metrics::render() const {
    std::string out;
    out.reserve(4096);
    scalar(out, "voice_broker_active_sessions", "gauge", "Sessions holding a slot now.", active_sessions);
    scalar(out, "voice_broker_queue_length", "gauge", "Visitors waiting in the queue now.", queue_length);
    scalar(out, "voice_broker_websocket_clients", "gauge", "Open live-channel WebSockets.", websocket_clients);
    scalar(out, "voice_broker_open_connections", "gauge", "Open client connections.", open_connections);
    scalar(out, "voice_broker_admissions_total", "counter", "Visitors admitted to a slot.", admissions);
    scalar(out, "voice_broker_warnings_sent_total", "counter", "Time-left warnings sent.", warnings_sent);
    scalar(out, "voice_broker_websocket_slow_dropped_total", "counter",
           "WebSocket clients dropped for not reading their messages.", websocket_dropped_slow);
    scalar(out, "voice_broker_connections_rejected_total", "counter",
           "Connections refused because MAX_CONNECTIONS was reached.", connections_rejected);
    family(out, "voice_broker_session_ends_total", "counter", "Sessions and queue places ended, by reason.");
    for (std::size_t i = 0; i < ends_by_reason.size(); ++i) {
        line(out, std::string("voice_broker_session_ends_total{reason=\"") + std::string(to_string(all_end_reasons[i])) + "\"} " +
                      std::to_string(ends_by_reason[i].load()));
    }
    queue_wait_seconds.render(out, "voice_broker_queue_wait_seconds", "Time from joining to admission.");
    family(out, "voice_broker_http_requests_total", "counter", "HTTP responses sent, by status.");
    for (std::size_t s = 100; s < requests_by_status.size(); ++s) {
        if (const auto n = requests_by_status[s].load()) {
            line(out, "voice_broker_http_requests_total{status=\"" + std::to_string(s) + "\"} " + std::to_string(n));
        }
    }
    scalar(out, "voice_broker_tokens_minted_total", "counter", "Ephemeral OpenAI keys minted.", tokens_minted);
    scalar(out, "voice_broker_hangups_sent_total", "counter", "Upstream calls hung up.", hangups_sent);
    scalar(out, "voice_broker_hangups_failed_total", "counter", "Upstream hang-ups that failed.", hangups_failed);
    scalar(out, "voice_broker_upstream_timeouts_total", "counter", "Upstream requests that timed out.", upstream_timeouts);
    family(out, "voice_broker_upstream_errors_total", "counter", "Upstream error answers, by status.");
    for (std::size_t s = 100; s < upstream_errors_by_status.size(); ++s) {
        if (const auto n = upstream_errors_by_status[s].load()) {
            line(out, "voice_broker_upstream_errors_total{status=\"" + std::to_string(s) + "\"} " + std::to_string(n));
        }
    }
    mint_latency_seconds.render(out, "voice_broker_mint_latency_seconds", "Time to mint one ephemeral key.");
    if (!instance_id.empty()) {
        family(out, "voice_broker_instance_info", "gauge", "This instance's INSTANCE_ID (always 1).");
        line(out, "voice_broker_instance_info{instance=\"" + instance_id + "\"} 1");
    }
    scalar(out, "voice_broker_store_up", "gauge", "1 when the shared store (Redis) can be reached.", store_up);
    scalar(out, "voice_broker_store_errors_total", "counter", "Store operations that failed or got no answer.", store_errors);
    scalar(out, "voice_broker_instances_alive", "gauge", "Instances that touched the shared store in the last seconds.",
           instances_alive);
    return out;
}

}  // namespace voice_broker
