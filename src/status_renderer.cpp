#include "voice_broker/status_renderer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <string_view>

namespace voice_broker {

namespace {

template <class Integer>
void append_number(std::string& out, Integer value) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    out.append(digits, end);
}

// Our own names and ISO 8601 times need no escaping.
void append_plain_string(std::string& out, std::string_view text) {
    out += '"';
    out += text;
    out += '"';
}

// Tickets are our own base64url, but one that is not plain (a ticket the visitor made up) goes
// through nlohmann's escaping, which also replaces invalid UTF-8.
void append_string(std::string& out, const std::string& text) {
    const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
        return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
    });
    if (plain) return append_plain_string(out, text);
    out += nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// {"maxConcurrentUsers":N,"sessionSeconds":S,"warningSeconds":[...]}: the warnings that fit in a session.
std::string render_limits(const session_limits& limits) {
    std::string out = "{\"maxConcurrentUsers\":";
    append_number(out, limits.max_concurrent_users);
    out += ",\"sessionSeconds\":";
    append_number(out, limits.session_duration.count());
    out += ",\"warningSeconds\":[";
    bool first = true;
    for (auto w : limits.warnings) {
        if (w >= limits.session_duration) continue;
        if (!first) out += ',';
        first = false;
        append_number(out, w.count());
    }
    out += "]}";
    return out;
}

}  // namespace

status_renderer::status_renderer(const session_limits& limits, const wall_clock_mapping& wall_clock,
                                 const admission_hold* hold)
    : limits_(render_limits(limits)), hold_(hold ? render_admission_hold(*hold) : std::string()), wall_clock_(wall_clock) {}

std::string status_renderer::render(const entry_status& s, bool as_push) const {
    std::string out;
    // Room for the fixed keys, the limits, the ticket and two ISO 8601 times: one allocation.
    out.reserve(limits_.size() + hold_.size() + s.ticket.size() + 256);
    // Keys in the order nlohmann writes them (std::map: sorted by bytes).
    switch (s.state) {
    case entry_state::queued:
        if (!hold_.empty()) {
            out += "{\"admissionPaused\":";
            out += hold_;
            out += ",\"etaSeconds\":";
        } else {
            out += "{\"etaSeconds\":";
        }
        append_number(out, s.eta_seconds);
        out += ",\"limits\":";
        out += limits_;
        if (s.paused) out += ",\"paused\":true";
        out += ",\"position\":";
        append_number(out, s.position);
        out += ",\"queueLength\":";
        append_number(out, s.queue_length);
        out += ",\"remainingSeconds\":";
        append_number(out, s.remaining_seconds);
        out += ",\"state\":\"queued\"";
        break;
    case entry_state::active:
        out += s.confirmed ? "{\"confirmed\":true" : "{\"confirmed\":false";
        out += ",\"etaSeconds\":0,\"expiresAt\":";
        append_plain_string(out, format_iso8601(wall_clock_.to_wall(s.expires_at)));
        if (s.last_warning.count() > 0) {
            out += ",\"lastWarningSeconds\":";
            append_number(out, s.last_warning.count());
        }
        out += ",\"limits\":";
        out += limits_;
        if (s.paused) out += ",\"paused\":true";
        out += ",\"queueLength\":";
        append_number(out, s.queue_length);
        out += ",\"remainingSeconds\":";
        append_number(out, s.remaining_seconds);
        out += ",\"startedAt\":";
        append_plain_string(out, format_iso8601(wall_clock_.to_wall(s.started_at)));
        out += ",\"state\":\"active\"";
        break;
    case entry_state::ended:
        out += "{\"limits\":";
        out += limits_;
        if (s.paused) out += ",\"paused\":true";
        out += ",\"queueLength\":";
        append_number(out, s.queue_length);
        out += ",\"reason\":";
        append_plain_string(out, to_string(s.reason));
        out += ",\"remainingSeconds\":";
        append_number(out, s.remaining_seconds);
        out += ",\"state\":\"ended\"";
        break;
    }
    out += ",\"ticket\":";
    append_string(out, s.ticket);
    out += as_push ? ",\"type\":\"status\"}" : "}";
    return out;
}

}  // namespace voice_broker
