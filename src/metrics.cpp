#include "voice_broker/metrics.hpp"

#include "voice_broker/logging.hpp"

#include <cstdio>

namespace voice_broker {

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(bounds_.size()) {}

void histogram::observe(double value) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        if (value <= bounds_[i]) buckets_[i].fetch_add(1, std::memory_order_relaxed);
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    // A negative or absurd observation (clocks that disagree) adds nothing to the sum rather than
    // wrapping it (the cast of a negative or huge double is undefined).
    const double micros = value * 1e6;
    const auto add = micros > 0 && micros < 1e18 ? static_cast<std::uint64_t>(micros) : std::uint64_t{0};
    sum_micros_.fetch_add(add, std::memory_order_relaxed);
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
// Exact dollars from picodollars: "0.0047936", "12.5", "0".
std::string dollars(std::int64_t picodollars) {
    std::string out = format_usd(usd_amount{picodollars}, 12);
    out.erase(out.find('$'), 1);
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
    return out;
}
std::string ratio(std::int64_t part, std::int64_t whole) {
    if (whole <= 0) return "0";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(part) / static_cast<double>(whole));
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

void metrics::count_tokens(const token_usage& u) {
    input_tokens[0].fetch_add(u.text_input, std::memory_order_relaxed);
    input_tokens[1].fetch_add(u.audio_input, std::memory_order_relaxed);
    input_tokens[2].fetch_add(u.cached_text_input, std::memory_order_relaxed);
    input_tokens[3].fetch_add(u.cached_audio_input, std::memory_order_relaxed);
    output_tokens[0].fetch_add(u.text_output, std::memory_order_relaxed);
    output_tokens[1].fetch_add(u.audio_output, std::memory_order_relaxed);
}

void metrics::add_cost(cost_kind kind, usd_amount amount) {
    if (amount.picodollars <= 0) return;
    cost_picodollars[static_cast<std::size_t>(kind)].fetch_add(static_cast<std::uint64_t>(amount.picodollars),
                                                               std::memory_order_relaxed);
}

void metrics::set_today_cost(cost_kind kind, usd_amount amount) {
    today_cost_picodollars[static_cast<std::size_t>(kind)].store(amount.picodollars, std::memory_order_relaxed);
}

void metrics::set_budget(int period, usd_amount budget, usd_amount spent) {
    const auto i = static_cast<std::size_t>(period == 0 ? 0 : 1);
    budget_picodollars[i].store(budget.picodollars, std::memory_order_relaxed);
    budget_spent_picodollars[i].store(spent.picodollars, std::memory_order_relaxed);
}

std::string metrics::render() const {
    std::string out;
    out.reserve(4096);
    scalar(out, "voice_broker_active_sessions", "gauge", "Sessions holding a slot now.", active_sessions);
    scalar(out, "voice_broker_queue_length", "gauge", "Visitors waiting in the queue now.", queue_length);
    scalar(out, "voice_broker_store_entries", "gauge",
           "Entries this instance keeps: live ones and remembered ends (memory store), or its mirror (Redis).",
           store_entries);
    scalar(out, "voice_broker_websocket_clients", "gauge", "Open live-channel WebSockets.", websocket_clients);
    scalar(out, "voice_broker_open_connections", "gauge", "Open client connections.", open_connections);
    scalar(out, "voice_broker_admissions_total", "counter", "Visitors admitted to a slot.", admissions);
    scalar(out, "voice_broker_warnings_sent_total", "counter", "Time-left warnings sent.", warnings_sent);
    scalar(out, "voice_broker_websocket_slow_dropped_total", "counter",
           "WebSocket clients dropped for not reading their messages.", websocket_dropped_slow);
    family(out, "voice_broker_log_lines_dropped_total", "counter",
           "Log lines dropped because the log output did not keep up (a thread that logs never waits).");
    line(out, "voice_broker_log_lines_dropped_total " + std::to_string(log_lines_dropped()));
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
    scalar(out, "voice_broker_store_durable_replicas", "gauge",
           "Replicas each admitting write waits for now (REDIS_WAIT_REPLICAS; fewer while Sentinel could promote fewer).",
           store_durable_replicas);

    render_cost(out);
    return out;
}

// The cost guard's families.
void metrics::render_cost(std::string& out) const {
    family(out, "voice_broker_tokens_total", "counter", "Realtime tokens billed, from the sidebands' usage, by direction and kind.");
    static constexpr const char* input_kinds[] = {"text", "audio", "cached_text", "cached_audio"};
    for (std::size_t i = 0; i < input_tokens.size(); ++i) {
        line(out, std::string("voice_broker_tokens_total{direction=\"input\",kind=\"") + input_kinds[i] + "\"} " +
                      std::to_string(input_tokens[i].load()));
    }
    static constexpr const char* output_kinds[] = {"text", "audio"};
    for (std::size_t i = 0; i < output_tokens.size(); ++i) {
        line(out, std::string("voice_broker_tokens_total{direction=\"output\",kind=\"") + output_kinds[i] + "\"} " +
                      std::to_string(output_tokens[i].load()));
    }
    static constexpr const char* cost_kinds[] = {"real", "estimated"};
    family(out, "voice_broker_cost_usd_total", "counter",
           "Dollars spent: real from OpenAI's usage, estimated at COST_PER_MINUTE_USD where no usage was seen.");
    for (std::size_t i = 0; i < 2; ++i) {
        line(out, std::string("voice_broker_cost_usd_total{kind=\"") + cost_kinds[i] + "\"} " +
                      dollars(static_cast<std::int64_t>(cost_picodollars[i].load())));
    }
    family(out, "voice_broker_today_cost_usd", "gauge", "Dollars spent today in BUDGET_TIMEZONE.");
    for (std::size_t i = 0; i < 2; ++i) {
        line(out, std::string("voice_broker_today_cost_usd{kind=\"") + cost_kinds[i] + "\"} " +
                      dollars(today_cost_picodollars[i].load()));
    }
    static constexpr const char* periods[] = {"day", "month"};
    family(out, "voice_broker_budget_usd", "gauge", "DAILY_BUDGET_USD and MONTHLY_BUDGET_USD (0: off).");
    for (std::size_t i = 0; i < 2; ++i) {
        line(out, std::string("voice_broker_budget_usd{period=\"") + periods[i] + "\"} " + dollars(budget_picodollars[i].load()));
    }
    family(out, "voice_broker_budget_spent_usd", "gauge", "Dollars spent in the current budget day and month.");
    for (std::size_t i = 0; i < 2; ++i) {
        line(out, std::string("voice_broker_budget_spent_usd{period=\"") + periods[i] + "\"} " +
                      dollars(budget_spent_picodollars[i].load()));
    }
    family(out, "voice_broker_budget_spent_ratio", "gauge", "Spent / budget for the day and month (0 when that budget is off).");
    for (std::size_t i = 0; i < 2; ++i) {
        line(out, std::string("voice_broker_budget_spent_ratio{period=\"") + periods[i] + "\"} " +
                      ratio(budget_spent_picodollars[i].load(), budget_picodollars[i].load()));
    }
    scalar(out, "voice_broker_budget_exhausted", "gauge", "1 while the budget admits nobody (join answers budget_exhausted).",
           budget_exhausted);
    scalar(out, "voice_broker_upstream_quota_paused", "gauge",
           "1 while admissions pause because OpenAI answered insufficient_quota.", upstream_quota_paused);
    {
        // Either pause: the alert "admissions paused" watches this one gauge.
        std::atomic<std::int64_t> paused{(operator_paused.load(std::memory_order_relaxed) != 0 ||
                                          upstream_quota_paused.load(std::memory_order_relaxed) != 0) ? 1 : 0};
        scalar(out, "voice_broker_admissions_paused", "gauge",
               "1 while admissions are paused, by the operator or by a quota pause (insufficient_quota).", paused);
    }
    scalar(out, "voice_broker_sideband_connections", "gauge", "Open sideband WebSockets (one per watched call).",
           sideband_connections);
    scalar(out, "voice_broker_sideband_failures_total", "counter",
           "Sidebands given up (the call goes on unwatched, priced by the estimate).", sideband_failures);
    scalar(out, "voice_broker_session_updates_reverted_total", "counter",
           "Page changes to the server's session settings that were put back.", session_updates_reverted);
    scalar(out, "voice_broker_wrap_ups_sent_total", "counter", "Wrap-up messages sent before a session's end.", wrap_ups_sent);
}

}  // namespace voice_broker
