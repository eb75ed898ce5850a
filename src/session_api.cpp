#include "voice_broker/session_api.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/secure_equals.hpp"
#include "voice_broker/status_renderer.hpp"
#include "voice_broker/visitor_ticket.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace voice_broker {

namespace {

std::optional<std::string> request_ticket(const http_request& req) { return find_ticket(req, ticket_sources::api); }

http_response status_response(const entry_status& s, session_api_context& ctx) {
    http_response res;
    res.set_header("Content-Type", "application/json");
    res.set_header("Cache-Control", "no-store");
    res.body = status_renderer(ctx.broker.limits(), ctx.wall_clock).answer(s);
    return res;
}

http_response no_ticket() {
    return api_error(400, "missing_ticket",
                     "No ticket: join first (POST /api/session?action=join), then send the ticket in the "
                     "X-Session-Ticket header or the vb_ticket cookie.");
}

http_response unknown_ticket() {
    return api_error(404, "unknown_ticket", "This ticket is unknown or has expired; join again.");
}

std::string address_for_log(const http_request& req) { return req.client_address.empty() ? "-" : req.client_address; }

api_outcome join(const http_request& req, session_api_context& ctx) {
    if (ctx.shutting_down) {
        auto res = api_error(503, "shutting_down", "The server is restarting; try again in a few seconds.");
        res.set_header("Retry-After", "5");
        return {res};
    }
    const auto existing = request_ticket(req);
    const auto fresh = ctx.new_ticket();
    const auto outcome = ctx.broker.join(fresh, existing ? &*existing : nullptr, ctx.now);
    if (outcome.what == join_outcome::kind::queue_full) {
        const auto& limits = ctx.broker.limits();
        // The head of a full queue waits at most about one session for a slot to free.
        const auto retry = std::max<std::int64_t>(5, std::min<std::int64_t>(60, limits.session_duration.count()));
        auto res = api_error(503, "queue_full",
                             "The queue is full (" + std::to_string(limits.max_queue_length) +
                                 " waiting). Try again in a minute.");
        res.set_header("Retry-After", std::to_string(retry));
        return {res};
    }
    auto res = status_response(outcome.status, ctx);
    res.set_header("Set-Cookie", ticket_cookie_header(outcome.status.ticket, req.secure, false));
    return {res};
}

api_outcome stats(session_api_context& ctx) {
    auto sessions = nlohmann::json::array();
    std::chrono::milliseconds running{0};
    for (const auto& s : ctx.broker.active_sessions()) {
        sessions.push_back({{"startedAt", format_iso8601(ctx.wall_clock.to_wall(s.started_at))},
                            {"remainingSeconds", seconds_until(ctx.now, s.expires_at)}});
        running += std::chrono::duration_cast<std::chrono::milliseconds>(ctx.now - s.started_at);
    }
    const auto& limits = ctx.broker.limits();
    const auto today = ctx.usage.today(ctx.wall_clock.to_wall(ctx.now), running);
    const double minutes = static_cast<double>(limits.session_duration.count()) / 60.0;
    return {json_response(
        200, {{"activeSessions", ctx.broker.active_count()},
              {"maxConcurrentUsers", limits.max_concurrent_users},
              {"queueLength", ctx.broker.queue_length()},
              {"maxQueueLength", limits.max_queue_length},
              {"sessionDurationMinutes", minutes},
              {"sessions", sessions},
              {"today",
               {{"sessionsStarted", today.sessions_started},
                {"sessionsCompleted", today.sessions_completed},
                {"minutesUsed", today.minutes_used},
                {"estimatedCostUsd", today.estimated_cost_usd}}},
              {"uptimeSeconds", std::chrono::duration_cast<std::chrono::seconds>(ctx.now - ctx.started_at).count()}})};
}

api_outcome force_end_all(const http_request& req, session_api_context& ctx) {
    const auto& token = ctx.settings.admin_token;
    if (token.empty()) {
        return {api_error(403, "admin_disabled",
                          "The admin API is disabled: set ADMIN_TOKEN in .env.local and restart to enable it.")};
    }
    const auto address = address_for_log(req);
    if (const auto wait = ctx.admin_throttle.retry_after(address, ctx.now); wait > 0) {
        auto res = api_error(429, "too_many_attempts", "Too many wrong admin tokens from this address; wait and retry.");
        res.set_header("Retry-After", std::to_string(wait));
        return {res};
    }
    const auto given = req.header("x-admin-token");
    if (given.empty() || !secure_equals(given, token)) {
        ctx.admin_throttle.record_failure(address, ctx.now);
        spdlog::warn("admin: rejected forceEndAll from {} ({} token)", address, given.empty() ? "missing" : "wrong");
        return {api_error(401, "unauthorized", "Missing or wrong x-admin-token header.")};
    }
    const auto ended = ctx.broker.force_end_all(ctx.now);
    spdlog::info("admin: forceEndAll from {} ended {} session(s)", address, ended);
    return {json_response(200, {{"success", true}, {"endedSessions", ended}})};
}

// One upstream use (a key or a relayed call) for the holder; the refusal when there is none.
std::optional<http_response> reserve_upstream_use(const std::string& ticket, session_api_context& ctx) {
    switch (ctx.broker.reserve_token(ticket, max_tokens_per_session, ctx.now)) {
    case session_broker::token_reservation::not_active:
        return api_error(409, "not_active", "You do not hold a slot right now; wait for your turn.");
    case session_broker::token_reservation::limit_reached:
        return api_error(429, "token_limit", "This session already received the most keys it may have.");
    case session_broker::token_reservation::reserved:
        break;
    }
    return std::nullopt;
}

api_outcome token(const http_request& req, session_api_context& ctx) {
    const auto ticket = request_ticket(req);
    if (!ticket) return {no_ticket()};
    if (ctx.settings.openai.mode == realtime_mode::relay) {
        return {api_error(409, "relay_mode",
                          "This server opens calls itself: post the SDP offer to /api/session?action=connect.")};
    }
    if (ctx.settings.openai.api_key.empty()) return {openai_not_configured()};
    const auto status = ctx.broker.status(*ticket, ctx.now);
    if (!status) return {unknown_ticket()};
    if (auto refused = reserve_upstream_use(*ticket, ctx)) return {*refused};
    const auto left = std::chrono::seconds{status->remaining_seconds};
    const auto ttl = std::clamp(std::min(ctx.settings.openai.token_ttl, left), std::chrono::seconds{10},
                                std::chrono::seconds{7200});
    return {{}, upstream_work{upstream_work::kind::mint_token, status->entry_id, ttl, {}}};
}

api_outcome record_call(const http_request& req, session_api_context& ctx) {
    const auto ticket = request_ticket(req);
    if (!ticket) return {no_ticket()};
    const auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("callId") || !body["callId"].is_string()) {
        return {api_error(400, "bad_request", "Send JSON {\"callId\":\"rtc_...\"}.")};
    }
    const auto call_id = body["callId"].get<std::string>();
    const bool valid = !call_id.empty() && call_id.size() <= 128 &&
                       std::all_of(call_id.begin(), call_id.end(), [](char c) {
                           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
                       });
    if (!valid) return {api_error(400, "bad_call_id", "callId must be the id from the Location header, like rtc_abc123.")};
    const auto status = ctx.broker.status(*ticket, ctx.now);
    if (!status) return {unknown_ticket()};
    if (status->state != entry_state::active) {
        return {api_error(409, "not_active", "You do not hold a slot right now; the call cannot be registered.")};
    }
    if (ctx.settings.openai.mode == realtime_mode::relay) {
        return {api_error(409, "relay_mode", "In relay mode the server tracks the call itself.")};
    }
    auto& calls = ctx.call_ids[status->entry_id];
    if (std::find(calls.begin(), calls.end(), call_id) == calls.end()) {
        if (calls.size() >= max_calls_per_session) {
            return {api_error(429, "call_limit", "This session already registered the most calls it may.")};
        }
        calls.push_back(call_id);
    }
    return {json_response(200, {{"ok", true}})};
}

api_outcome connect(const http_request& req, session_api_context& ctx) {
    const auto ticket = request_ticket(req);
    if (!ticket) return {no_ticket()};
    if (ctx.settings.openai.mode != realtime_mode::relay) {
        return {api_error(409, "token_mode", "This server uses token mode: request a key with action=token.")};
    }
    if (ctx.settings.openai.api_key.empty()) return {openai_not_configured()};
    if (req.header("content-type").rfind("application/sdp", 0) != 0) {
        return {api_error(415, "unsupported_media_type", "Send the SDP offer with Content-Type: application/sdp.")};
    }
    if (req.body.rfind("v=0", 0) != 0) return {api_error(400, "bad_sdp", "The body is not an SDP offer.")};
    const auto status = ctx.broker.status(*ticket, ctx.now);
    if (!status) return {unknown_ticket()};
    if (auto refused = reserve_upstream_use(*ticket, ctx)) return {*refused};
    return {{}, upstream_work{upstream_work::kind::relay_offer, status->entry_id, {}, req.body}};
}

}  // namespace

http_response openai_not_configured() {
    return api_error(503, "not_configured",
                     "OpenAI is not configured on this server: the operator must set OPENAI_API_KEY in .env.local.");
}

bool is_stats_request(const http_request& req) {
    // Must stay the exact condition under which handle_session_api answers with stats().
    return (req.method == "GET" || req.method == "HEAD") && req.query_param("action") == "stats";
}

api_outcome handle_session_api(const http_request& req, session_api_context& ctx) {
    const auto action = req.query_param("action");
    if (!action || action->empty()) {
        return {api_error(400, "missing_action",
                          "Say what to do: /api/session?action=join|status|heartbeat|leave|stats|forceEndAll|token|call|connect.")};
    }
    const auto& a = *action;
    const auto& m = req.method;
    auto is_read = [&m] { return m == "GET" || m == "HEAD"; };

    if (a == "join") {
        if (m != "POST") return {method_not_allowed("POST")};
        return join(req, ctx);
    }
    if (a == "status" || a == "heartbeat") {
        if (a == "status" && !is_read()) return {method_not_allowed("GET, HEAD")};
        if (a == "heartbeat" && m != "POST") return {method_not_allowed("POST")};
        const auto ticket = request_ticket(req);
        if (!ticket) return {no_ticket()};
        const auto s = a == "status" ? ctx.broker.status(*ticket, ctx.now) : ctx.broker.heartbeat(*ticket, ctx.now);
        if (!s) return {unknown_ticket()};
        return {status_response(*s, ctx)};
    }
    if (a == "leave") {
        if (m != "POST") return {method_not_allowed("POST")};
        const auto ticket = request_ticket(req);
        if (!ticket) return {no_ticket()};
        const auto before = ctx.broker.status(*ticket, ctx.now);
        if (!before) return {unknown_ticket()};
        ctx.broker.leave(*ticket, ctx.now);
        const auto after = ctx.broker.status(*ticket, ctx.now);
        auto res = json_response(200, {{"state", "ended"}, {"reason", to_string(after ? after->reason : end_reason::left)}});
        res.set_header("Set-Cookie", ticket_cookie_header("", req.secure, true));
        return {res};
    }
    if (a == "stats") {
        if (!is_read()) return {method_not_allowed("GET, HEAD")};
        return stats(ctx);
    }
    if (a == "forceEndAll") {
        if (m != "GET" && m != "POST") return {method_not_allowed("GET, POST")};
        return force_end_all(req, ctx);
    }
    if (a == "token") {
        if (m != "POST") return {method_not_allowed("POST")};
        return token(req, ctx);
    }
    if (a == "call") {
        if (m != "POST") return {method_not_allowed("POST")};
        return record_call(req, ctx);
    }
    if (a == "connect") {
        if (m != "POST") return {method_not_allowed("POST")};
        return connect(req, ctx);
    }
    return {api_error(400, "unknown_action", "Unknown action; see docs/API.md for the list.")};
}

}  // namespace voice_broker
