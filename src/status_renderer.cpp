#include "voice_broker/status_renderer.hpp"

#include "voice_broker/session_api.hpp"

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

// Tickets are our own base64url, but one that is not plain goes through nlohmann, so that its
// escaping (and its refusal of invalid UTF-8) stay exactly those of status_json().dump().
void append_string(std::string& out, const std::string& text) {
    const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
        return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
    });
    if (plain) return append_plain_string(out, text);
    out += nlohmann::json(text).dump();
}

}  // namespace

status_renderer::status_renderer(const session_limits& limits, const wall_clock_mapping& clock)
    : limits_(limits_json(limits).dump()), clock_(clock) {}

std::string status_renderer::render(const entry_status& s) const {
    std::string out;
    // Room for the fixed keys, the limits, the ticket and two ISO 8601 times: one allocation.
    out.reserve(limits_.size() + s.ticket.size() + 256);
    // Keys in the order nlohmann writes them (std::map: sorted by bytes).
    switch (s.state) {
    case entry_state::queued:
        out += "{\"etaSeconds\":";
        append_number(out, s.eta_seconds);
        out += ",\"limits\":";
        out += limits_;
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
        append_plain_string(out, format_iso8601(clock_.to_wall(s.expires_at)));
        out += ",\"limits\":";
        out += limits_;
        out += ",\"queueLength\":";
        append_number(out, s.queue_length);
        out += ",\"remainingSeconds\":";
        append_number(out, s.remaining_seconds);
        out += ",\"startedAt\":";
        append_plain_string(out, format_iso8601(clock_.to_wall(s.started_at)));
        out += ",\"state\":\"active\"";
        break;
    case entry_state::ended:
        out += "{\"limits\":";
        out += limits_;
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
    out += ",\"type\":\"status\"}";
    return out;
}

}  // namespace voice_broker
