#include "voice_broker/admin_api.hpp"

#include "voice_broker/api_response.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>

namespace voice_broker {

using json = nlohmann::json;

namespace {

constexpr std::string_view prefix = "/api/admin/";

std::optional<std::uint64_t> parse_id(std::string_view text) {
    std::uint64_t id = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc{} || p != text.data() + text.size() || text.empty() || id == 0) return std::nullopt;
    return id;
}

std::optional<http_response> needs_json_body(const http_request& req) {
    if (req.header("content-type").rfind("application/json", 0) != 0) {
        return api_error(415, "unsupported_media_type", "Send the body as JSON with Content-Type: application/json.");
    }
    return std::nullopt;
}

std::variant<http_response, admin_call> parse_login(const http_request& req) {
    admin_call call;
    if (req.method == "GET" || req.method == "HEAD") {
        call.what = admin_call::kind::login_status;
        return call;
    }
    if (req.method != "POST") return method_not_allowed("GET, POST");
    if (auto refusal = needs_json_body(req)) return *refusal;
    const auto body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("token") || !body["token"].is_string()) {
        return api_error(400, "bad_request", "Send JSON {\"token\":\"...\"}.");
    }
    call.what = admin_call::kind::login;
    call.token = body["token"].get<std::string>();
    call.changes_state = true;
    return call;
}

std::variant<http_response, admin_call> parse_limits(const http_request& req) {
    if (req.method != "PUT") return method_not_allowed("PUT");
    if (auto refusal = needs_json_body(req)) return *refusal;
    const auto body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        return api_error(400, "bad_limits", "Send JSON {\"maxConcurrentUsers\":2,\"sessionDurationMinutes\":5}.");
    }
    admin_call call;
    call.what = admin_call::kind::limits;
    call.changes_state = true;
    if (const auto users = body.find("maxConcurrentUsers"); users != body.end()) {
        if (!users->is_number_integer() || users->get<std::int64_t>() < 1 || users->get<std::int64_t>() > 10000) {
            return api_error(400, "bad_limits", "maxConcurrentUsers must be an integer from 1 to 10000");
        }
        call.limits.max_concurrent_users = users->get<std::size_t>();
    }
    if (const auto minutes = body.find("sessionDurationMinutes"); minutes != body.end()) {
        if (!minutes->is_number() || !(minutes->get<double>() > 0) || minutes->get<double>() > 1440) {
            return api_error(400, "bad_limits", "sessionDurationMinutes must be a number above 0, at most 1440");
        }
        call.limits.session_duration = std::chrono::seconds{std::max(1LL, std::llround(minutes->get<double>() * 60))};
    }
    return call;
}

// POST /api/admin/<word> with no body: pause, resume, end-all, logout.
std::variant<http_response, admin_call> plain_action(const http_request& req, admin_call::kind what) {
    if (req.method != "POST") return method_not_allowed("POST");
    admin_call call;
    call.what = what;
    call.changes_state = true;
    return call;
}

// POST /api/admin/sessions/{id}/end and POST /api/admin/queue/{id}/remove.
std::optional<std::variant<http_response, admin_call>> parse_entry_action(const http_request& req, std::string_view rest) {
    for (const auto& [head, tail, what] : {std::tuple{std::string_view("sessions/"), std::string_view("/end"), admin_call::kind::end_session},
                                           std::tuple{std::string_view("queue/"), std::string_view("/remove"), admin_call::kind::remove_queued}}) {
        if (rest.rfind(head, 0) != 0 || rest.size() <= head.size() + tail.size() || rest.substr(rest.size() - tail.size()) != tail) {
            continue;
        }
        const auto id = parse_id(rest.substr(head.size(), rest.size() - head.size() - tail.size()));
        if (!id) return std::variant<http_response, admin_call>(api_error(404, "not_found", "No such admin endpoint; see docs/API.md."));
        auto parsed = plain_action(req, what);
        if (auto* call = std::get_if<admin_call>(&parsed)) call->entry_id = *id;
        return parsed;
    }
    return std::nullopt;
}

json limits_json(const session_limits& limits) {
    return {{"maxConcurrentUsers", limits.max_concurrent_users},
            {"sessionDurationMinutes", static_cast<double>(limits.session_duration.count()) / 60.0},
            {"maxQueueLength", limits.max_queue_length}};
}

json instances_json(const store_admin_view& view, const admin_context& ctx, std::size_t active_here) {
    auto out = json::array();
    if (!ctx.redis) {
        out.push_back({{"id", ctx.instance}, {"healthy", true}, {"lastSeenSeconds", 0}, {"activeSessions", active_here},
                       {"connections", ctx.connections}});
        return out;
    }
    for (const auto& i : view.instances) {
        std::size_t active = 0;
        for (const auto& e : view.entries) active += e.entry.state == entry_state::active && e.instance == i.id;
        out.push_back({{"id", i.id},
                       {"healthy", i.last_seen_ms_ago < 15000},
                       {"lastSeenSeconds", i.last_seen_ms_ago / 1000},
                       {"activeSessions", active},
                       {"connections", i.id == ctx.instance ? ctx.connections : i.connections}});
    }
    return out;
}

json upstream_json(const admin_context& ctx, const wall_clock_mapping& wall_clock) {
    json last = nullptr;
    if (ctx.upstream.last_error_status) {
        last = {{"status", *ctx.upstream.last_error_status},
                {"code", ctx.upstream.last_error_code},
                {"at", format_iso8601(wall_clock.to_wall(ctx.upstream.last_error_at))}};
    }
    json latency = nullptr;
    if (ctx.upstream.latency_p50_ms) {
        latency = {{"p50", std::lround(*ctx.upstream.latency_p50_ms)}, {"p90", std::lround(ctx.upstream.latency_p90_ms.value_or(0))}};
    }
    json paused_until;
    if (ctx.quota_paused_until) paused_until = format_iso8601(*ctx.quota_paused_until);
    return {{"lastError", last}, {"latencyMs", latency}, {"quotaPausedUntil", paused_until}};
}

}  // namespace

std::variant<http_response, admin_call> parse_admin_api(const http_request& req) {
    const std::string_view path = req.path;
    if (path.rfind(prefix, 0) != 0) return api_error(404, "not_found", "No such admin endpoint; see docs/API.md.");
    const auto rest = path.substr(prefix.size());
    if (rest == "login") return parse_login(req);
    if (rest == "logout") return plain_action(req, admin_call::kind::logout);
    if (rest == "state") {
        if (req.method != "GET" && req.method != "HEAD") return method_not_allowed("GET, HEAD");
        return admin_call{};
    }
    if (rest == "end-all") return plain_action(req, admin_call::kind::end_all);
    if (rest == "pause") return plain_action(req, admin_call::kind::pause);
    if (rest == "resume") return plain_action(req, admin_call::kind::resume);
    if (rest == "limits") return parse_limits(req);
    if (auto parsed = parse_entry_action(req, rest)) return *parsed;
    return api_error(404, "not_found", "No such admin endpoint; see docs/API.md.");
}

json admin_state_document(const store_admin_view& view, const admin_context& ctx, steady_time now,
                          const wall_clock_mapping& wall_clock) {
    auto sessions = json::array();
    auto queue = json::array();
    std::size_t active_here = 0;
    for (const auto& a : view.entries) {
        const auto& e = a.entry;
        const auto id = std::to_string(e.entry_id);
        if (e.state == entry_state::active) {
            active_here += a.instance == ctx.instance;
            sessions.push_back({{"id", id},
                                {"startedAt", format_iso8601(wall_clock.to_wall(e.started_at))},
                                {"expiresAt", format_iso8601(wall_clock.to_wall(e.expires_at))},
                                {"remainingSeconds", seconds_until(now, e.expires_at)},
                                {"mode", ctx.mode == realtime_mode::relay ? "relay" : "token"},
                                {"callConnected", a.call_connected},
                                {"clientAddress", mask_address(a.client_address)},
                                {"instance", a.instance},
                                {"costUsd", ctx.session_costs_usd.count(e.entry_id) ? json(ctx.session_costs_usd.at(e.entry_id)) : json()}});
        } else {
            queue.push_back({{"id", id},
                             {"position", e.position},
                             {"waitingSeconds", std::chrono::duration_cast<std::chrono::seconds>(now - e.joined_at).count()},
                             {"connected", e.connected},
                             {"clientAddress", mask_address(a.client_address)}});
        }
    }
    return {{"instance", ctx.instance},
            {"storeKind", ctx.redis ? "redis" : "memory"},
            {"storeHealthy", ctx.store_healthy},
            {"paused", view.paused},
            {"limits", limits_json(view.limits)},
            {"sessions", sessions},
            {"queue", queue},
            {"today",
             {{"sessionsStarted", ctx.today.sessions_started},
              {"sessionsCompleted", ctx.today.sessions_completed},
              {"minutesUsed", ctx.today.minutes_used},
              {"estimatedCostUsd", ctx.today.estimated_cost_usd},
              {"realCostUsd", ctx.real_cost_usd},
              {"budget", ctx.budget}}},
            {"upstream", upstream_json(ctx, wall_clock)},
            {"instances", instances_json(view, ctx, active_here)}};
}

std::string mask_address(const std::string& address) {
    if (address.empty()) return "-";
    if (const auto dot = address.rfind('.'); dot != std::string::npos && address.find(':') == std::string::npos) {
        return address.substr(0, dot + 1) + "x";
    }
    // IPv6: the first three groups, then ::x
    std::string out;
    int groups = 0;
    for (std::size_t at = 0; at < address.size() && groups < 3; ++groups) {
        const auto colon = address.find(':', at);
        if (colon == at) break;  // "::" early: what came before is all there is
        out += address.substr(at, colon == std::string::npos ? std::string::npos : colon - at);
        out += ':';
        if (colon == std::string::npos) break;
        at = colon + 1;
    }
    return out + ":x";
}

http_response admin_unauthorized() {
    return api_error(401, "unauthorized", "Sign in first (POST /api/admin/login), or send the x-admin-token header.");
}

http_response admin_disabled() {
    return api_error(403, "admin_disabled", "The admin API is disabled: set ADMIN_TOKEN in .env.local and restart to enable it.");
}

http_response admin_bad_origin() {
    return api_error(403, "bad_origin", "This page's origin may not use the admin API.");
}

}  // namespace voice_broker
