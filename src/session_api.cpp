#include "voice_broker/session_api.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/ascii.hpp"
#include "voice_broker/realtime_call_id.hpp"
#include "voice_broker/admin_auth.hpp"
#include "voice_broker/status_renderer.hpp"
#include "voice_broker/visitor_ticket.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace voice_broker {

namespace {

http_response no_ticket() {
    return api_error(400, "missing_ticket",
                     "No ticket: join first (POST /api/session?action=join), then send the ticket in the "
                     "X-Session-Ticket header or the vb_ticket cookie.");
}

http_response not_active_for_call() {
    return api_error(409, "not_active", "You do not hold a slot right now; the call cannot be registered.");
}

std::string address_for_log(const http_request& req) { return req.client_address.empty() ? "-" : req.client_address; }

// The checks of action=call that need only the request.
std::variant<http_response, api_call> parse_record_call(const http_request& req, api_call call) {
    const auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("callId") || !body["callId"].is_string()) {
        return api_error(400, "bad_request", "Send JSON {\"callId\":\"rtc_...\"}.");
    }
    call.call_id = body["callId"].get<std::string>();
    if (!is_valid_call_id(call.call_id)) {
        return api_error(400, "bad_call_id", "callId must be the id from the Location header, like rtc_abc123.");
    }
    return call;
}

std::variant<http_response, api_call> parse_token(const config& settings, api_call call) {
    if (settings.openai.mode == realtime_mode::relay) {
        return api_error(409, "relay_mode", "This server opens calls itself: post the SDP offer to /api/session?action=connect.");
    }
    if (settings.openai.api_key.empty()) return openai_not_configured();
    return call;
}

std::variant<http_response, api_call> parse_connect(const http_request& req, const config& settings, api_call call) {
    if (settings.openai.mode != realtime_mode::relay) {
        return api_error(409, "token_mode", "This server uses token mode: request a key with action=token.");
    }
    if (settings.openai.api_key.empty()) return openai_not_configured();
    if (req.header("content-type").rfind("application/sdp", 0) != 0) {
        return api_error(415, "unsupported_media_type", "Send the SDP offer with Content-Type: application/sdp.");
    }
    if (req.body.rfind("v=0", 0) != 0) return api_error(400, "bad_sdp", "The body is not an SDP offer.");
    call.sdp_offer = req.body;
    return call;
}

struct action_rule {
    const char* name;
    api_call::kind what;
    const char* allow;    // the methods, as the Allow header lists them
    bool needs_ticket;
};

constexpr action_rule action_rules[] = {
    {"join", api_call::kind::join, "POST", false},
    {"status", api_call::kind::status, "GET, HEAD", true},
    {"heartbeat", api_call::kind::heartbeat, "POST", true},
    {"leave", api_call::kind::leave, "POST", true},
    {"stats", api_call::kind::stats, "GET, HEAD", false},
    {"forceEndAll", api_call::kind::force_end_all, "GET, POST", false},
    {"token", api_call::kind::token, "POST", true},
    {"call", api_call::kind::record_call, "POST", true},
    {"connect", api_call::kind::connect, "POST", true},
};

bool method_allowed(std::string_view method, std::string_view allow) {
    bool ok = false;
    for_each_list_item(allow, ',', [&](std::string_view m) { ok = ok || m == method; });
    return ok;
}

}  // namespace

std::variant<http_response, api_call> parse_session_api(const http_request& req, const config& settings) {
    const auto action = req.query_param("action");
    if (!action || action->empty()) {
        return api_error(400, "missing_action",
                         "Say what to do: /api/session?action=join|status|heartbeat|leave|stats|forceEndAll|token|call|connect.");
    }
    const auto rule = std::find_if(std::begin(action_rules), std::end(action_rules),
                                   [&](const action_rule& r) { return *action == r.name; });
    if (rule == std::end(action_rules)) return api_error(400, "unknown_action", "Unknown action; see docs/API.md for the list.");
    if (!method_allowed(req.method, rule->allow)) return method_not_allowed(rule->allow);
    api_call call;
    call.what = rule->what;
    call.ticket = find_ticket(req, ticket_sources::api);
    call.russian = iequals_ascii(req.header("x-visitor-language"), "ru");
    if (rule->needs_ticket && !call.ticket) return no_ticket();
    switch (call.what) {
    case api_call::kind::record_call: return parse_record_call(req, std::move(call));
    case api_call::kind::token: return parse_token(settings, std::move(call));
    case api_call::kind::connect: return parse_connect(req, settings, std::move(call));
    default: return call;
    }
}

std::optional<http_response> check_admin_token(const http_request& req, admin_auth& auth, steady_time now) {
    const auto address = address_for_log(req);
    const auto given = req.header("x-admin-token");
    // A missing token counts as a wrong guess (no setting can hold a NUL byte, so this never matches).
    constexpr std::string_view missing("\0missing", 8);
    const auto v = auth.check(std::nullopt, given.empty() ? missing : given, address, now, false);
    switch (v.what) {
    case admin_auth::verdict::kind::ok: return std::nullopt;
    case admin_auth::verdict::kind::disabled:
        return api_error(403, "admin_disabled", "The admin API is disabled: set ADMIN_TOKEN in .env.local and restart to enable it.");
    case admin_auth::verdict::kind::throttled: {
        auto res = api_error(429, "too_many_attempts", "Too many wrong admin tokens from this address; wait and retry.");
        res.set_header("Retry-After", std::to_string(v.retry_after));
        return res;
    }
    case admin_auth::verdict::kind::unauthorized: break;
    }
    spdlog::warn("admin: rejected forceEndAll from {} ({} token)", address, given.empty() ? "missing" : "wrong");
    return api_error(401, "unauthorized", "Missing or wrong x-admin-token header.");
}

bool is_stats_request(const http_request& req) {
    // Must stay the exact condition under which parse_session_api asks for stats.
    return (req.method == "GET" || req.method == "HEAD") && req.query_param("action") == "stats";
}

// ---- answers ---------------------------------------------------------------------------------

http_response answer_status(const entry_status& s, const session_limits& limits, const wall_clock_mapping& wall_clock,
                            const admission_hold* hold) {
    http_response res;
    res.set_header("Content-Type", "application/json");
    res.set_header("Cache-Control", "no-store");
    res.body = status_renderer(limits, wall_clock, hold).answer(s);
    return res;
}

http_response refuse_join(const admission_hold& hold, std::chrono::sys_seconds now) {
    const auto wait = std::max<std::int64_t>(1, (hold.resumes_at - now).count());
    http_response res;
    if (hold.why == admission_hold::reason::upstream_quota) {
        res = api_error(503, "upstream_quota",
                        "The OpenAI account is out of credit; new sessions are paused. Try again in a few minutes.");
    } else {
        // "00:00" of the reset day, in the budget's zone: the local time part of resetsAtLocal.
        const auto local = hold.resumes_at_local.size() >= 16 ? hold.resumes_at_local.substr(11, 5) : std::string("00:00");
        const std::string message =
            hold.monthly ? "This month's budget for voice sessions is spent. New sessions start again on " +
                               hold.resumes_at_local.substr(0, 10) + " at " + local + " (" + hold.time_zone + ")."
                         : "Today's budget for voice sessions is spent. New sessions start again at " + local + " (" +
                               hold.time_zone + ").";
        res = api_error(503, "budget_exhausted", message);
        auto doc = nlohmann::json::parse(res.body);
        doc["error"]["resetsAt"] = format_iso8601(hold.resumes_at);
        doc["error"]["resetsAtLocal"] = hold.resumes_at_local;
        doc["error"]["timeZone"] = hold.time_zone;
        doc["error"]["period"] = hold.monthly ? "month" : "day";
        res.body = doc.dump();
    }
    res.set_header("Retry-After", std::to_string(wait));
    return res;
}

http_response answer_join(const join_outcome& outcome, const session_limits& limits, const wall_clock_mapping& wall_clock,
                          bool secure, const admission_hold* hold) {
    if (outcome.what == join_outcome::kind::queue_full) {
        // The head of a full queue waits at most about one session for a slot to free.
        const auto retry = std::max<std::int64_t>(5, std::min<std::int64_t>(60, limits.session_duration.count()));
        auto res = api_error(503, "queue_full",
                             "The queue is full (" + std::to_string(limits.max_queue_length) + " waiting). Try again in a minute.");
        res.set_header("Retry-After", std::to_string(retry));
        return res;
    }
    auto res = answer_status(outcome.status, limits, wall_clock, hold);
    res.set_header("Set-Cookie", ticket_cookie_header(outcome.status.ticket, secure, false));
    return res;
}

http_response answer_leave(const entry_status& after, bool secure) {
    auto res = json_response(200, {{"state", "ended"}, {"reason", to_string(after.reason)}});
    res.set_header("Set-Cookie", ticket_cookie_header("", secure, true));
    return res;
}

http_response answer_stats(const store_stats& stats, const usage_today& today, steady_time now, steady_time started_at,
                           const wall_clock_mapping& wall_clock, const nlohmann::json& cost) {
    auto sessions = nlohmann::json::array();
    for (const auto& s : stats.sessions) {
        sessions.push_back({{"startedAt", format_iso8601(wall_clock.to_wall(s.started_at))},
                            {"remainingSeconds", seconds_until(now, s.expires_at)}});
    }
    const double minutes = static_cast<double>(stats.limits.session_duration.count()) / 60.0;
    auto doc = nlohmann::json{{"activeSessions", stats.active},
                               {"maxConcurrentUsers", stats.limits.max_concurrent_users},
                               {"queueLength", stats.queued},
                               {"maxQueueLength", stats.limits.max_queue_length},
                               {"sessionDurationMinutes", minutes},
                               {"sessions", sessions},
                               {"today",
                                {{"sessionsStarted", today.sessions_started},
                                 {"sessionsCompleted", today.sessions_completed},
                                 {"minutesUsed", today.minutes_used},
                                 {"estimatedCostUsd", today.estimated_cost_usd}}},
                               {"uptimeSeconds", std::chrono::duration_cast<std::chrono::seconds>(now - started_at).count()}};
    if (stats.paused) doc["paused"] = true;  // only while paused: the document is otherwise as it was
    if (!cost.is_null()) doc["cost"] = cost;
    return json_response(200, doc);
}

http_response answer_force_end_all(std::size_t ended) {
    return json_response(200, {{"success", true}, {"endedSessions", ended}});
}

std::optional<http_response> refuse_reservation(const token_reservation& r) {
    switch (r.what) {
    case token_reservation::kind::unknown: return unknown_ticket();
    case token_reservation::kind::not_active:
        return api_error(409, "not_active", "You do not hold a slot right now; wait for your turn.");
    case token_reservation::kind::limit_reached:
        return api_error(429, "token_limit", "This session already received the most keys it may have.");
    case token_reservation::kind::reserved: break;
    }
    return std::nullopt;
}

std::optional<http_response> refuse_call_recording(const entry_status& s, const config& settings) {
    if (s.state != entry_state::active) return not_active_for_call();
    if (settings.openai.mode == realtime_mode::relay) {
        return api_error(409, "relay_mode", "In relay mode the server tracks the call itself.");
    }
    return std::nullopt;
}

http_response answer_call_recording(call_recording r) {
    switch (r) {
    case call_recording::recorded: break;
    case call_recording::unknown: return unknown_ticket();
    case call_recording::not_active: return not_active_for_call();
    case call_recording::limit_reached:
        return api_error(429, "call_limit", "This session already registered the most calls it may.");
    }
    return json_response(200, {{"ok", true}});
}

std::chrono::seconds token_ttl(const entry_status& holder, const openai_settings& settings) {
    const auto left = std::chrono::seconds{holder.remaining_seconds};
    return std::clamp(std::min(settings.token_ttl, left), std::chrono::seconds{10}, std::chrono::seconds{7200});
}

http_response unknown_ticket() { return api_error(404, "unknown_ticket", "This ticket is unknown or has expired; join again."); }


http_response openai_not_configured() {
    return api_error(503, "not_configured",
                     "OpenAI is not configured on this server: the operator must set OPENAI_API_KEY in .env.local.");
}

http_response upstream_quota_paused(std::int64_t retry_after_seconds) {
    auto res = api_error(503, "upstream_quota", "The OpenAI account is out of credit; new sessions are paused. Try again in a few minutes.");
    res.set_header("Retry-After", std::to_string(retry_after_seconds));
    return res;
}

http_response store_unavailable() {
    auto res = api_error(503, "store_unavailable", "The server cannot reach its shared store right now; try again in a few seconds.");
    res.set_header("Retry-After", "2");
    return res;
}

http_response too_many_joins(std::int64_t retry_after_seconds) {
    auto res = api_error(429, "too_many_joins", "Too many joins from this address; wait and try again.");
    res.set_header("Retry-After", std::to_string(retry_after_seconds));
    return res;
}

http_response too_many_tickets(std::size_t limit) {
    return api_error(429, "too_many_tickets",
                     "This address already holds " + std::to_string(limit) + " places; leave one before joining again.");
}

http_response shutting_down() {
    auto res = api_error(503, "shutting_down", "The server is restarting; try again in a few seconds.");
    res.set_header("Retry-After", "5");
    return res;
}

}  // namespace voice_broker
