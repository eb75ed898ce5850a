#include "voice_broker/router.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/client_identity.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/request_id.hpp"
#include "voice_broker/session_api.hpp"
#include "voice_broker/session_service.hpp"
#include "voice_broker/static_files.hpp"
#include "voice_broker/visitor_ticket.hpp"

#include <nlohmann/json.hpp>

namespace voice_broker {

namespace {

route_decision answer(http_response res, bool close = false) {
    route_decision d;
    d.response = std::move(res);
    d.close = close;
    return d;
}

}  // namespace

router::router(routing_settings settings, std::shared_ptr<session_service> service, metrics& counters,
               std::shared_ptr<const static_files> files)
    : settings_(std::move(settings)),
      service_(std::move(service)),
      metrics_(counters),
      files_(std::move(files)),
      started_at_(std::chrono::steady_clock::now()) {}

http_response router::health() const {
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_);
    const bool stopping = shutting_down_.load();
    // Without its shared store an instance still serves pages and ends calls on time: it is
    // degraded, not down (a 200, so that a load balancer does not take every instance out at once).
    const bool store_up = metrics_.store_up.load(std::memory_order_relaxed) != 0;
    const char* status = stopping ? "shutting_down" : store_up ? "ok" : "degraded";
    return json_response(stopping ? 503 : 200, {{"status", status},
                                                {"version", VOICE_BROKER_VERSION},
                                                {"instance", metrics_.instance_id},
                                                {"store", store_up ? "up" : "unreachable"},
                                                {"uptimeSeconds", uptime.count()}});
}

http_response router::read_failure_answer(read_failure why) {
    switch (why) {
    case read_failure::body_too_large:
        return api_error(413, "payload_too_large", "The request body is larger than this server accepts.");
    case read_failure::headers_too_large:
        return api_error(431, "headers_too_large", "The request headers are too large.");
    case read_failure::malformed:
        break;
    }
    return api_error(400, "bad_request", "The request is not valid HTTP/1.1.");
}

route_decision router::route(http_request& req) const {
    const auto who = identify_client(settings_.trusted_proxies, req);
    req.client_address = who.address;
    req.secure = who.secure;
    if (const auto given = req.header("x-request-id"); valid_request_id(given)) req.request_id.assign(given);
    else new_request_id(req.request_id);

    route_decision d;
    if (req.plain_on_tls_port) d = answer(https_redirect(req), true);
    else if (req.websocket_upgrade) d = upgrade(req);
    else if (req.target.empty() || req.target.front() != '/') {
        d = answer(api_error(400, "bad_target", "The request target must be an absolute path."), true);
    } else {
        d = plain(req);
    }
    d.head_only = req.method == "HEAD";  // HEAD is decided here, once, whoever answers
    return d;
}

route_decision router::plain(http_request& req) const {
    const std::string_view path = req.path;
    const bool read = req.method == "GET" || req.method == "HEAD";
    if (path == "/api/health") return answer(read ? health() : method_not_allowed("GET, HEAD"));
    if (path == "/metrics") {
        if (!read) return answer(method_not_allowed("GET, HEAD"));
        http_response res;
        res.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        res.set_header("Cache-Control", "no-store");
        res.body = metrics_.render();
        return answer(std::move(res));
    }
    if (path == "/api/session") {
        // Stats is polled by dashboards and monitors: answer it here, on the caller's thread,
        // from the copy the service published, while that copy is fresh.  It is the answer the
        // service would give (same status, headers and bytes), without two strand hops.
        if (is_stats_request(req)) {
            if (auto res = service_->fresh_stats_answer()) return answer(std::move(*res));
        }
        route_decision d;
        d.what = route_decision::kind::session_api;
        return d;
    }
    if (path == live_channel_path) {
        auto res = api_error(426, "upgrade_required", "This is the live channel: open it as a WebSocket.");
        res.set_header("Upgrade", "websocket");
        return answer(std::move(res));
    }
    if (path.rfind("/api/", 0) == 0 || path == "/api") {
        return answer(api_error(404, "not_found", "No such API endpoint; see docs/API.md."));
    }
    if (!read) return answer(method_not_allowed("GET, HEAD"));
    return answer(files_.load()->serve(req));
}

route_decision router::upgrade(const http_request& req) const {
    if (req.path != live_channel_path) {
        return answer(api_error(404, "not_found", "WebSocket is only served at /api/session/ws."), true);
    }
    // Refuse cross-site pages: the ticket cookie alone must not open someone's channel.
    if (!origin_allowed(req)) {
        return answer(api_error(403, "bad_origin", "This page's origin may not open the live channel."), true);
    }
    auto ticket = find_ticket(req, ticket_sources::live_channel);
    if (!ticket) return answer(api_error(400, "missing_ticket", "Open the live channel with ?ticket=... after joining."), true);
    route_decision d;
    d.what = route_decision::kind::live_channel;
    d.ticket = std::move(*ticket);
    return d;
}

bool router::origin_allowed(const http_request& req) const {
    const auto origin = req.header("origin");
    if (origin.empty()) return true;  // not a browser page: nothing to check against
    const auto scheme_end = origin.find("://");
    const auto origin_host = scheme_end == std::string_view::npos ? origin : origin.substr(scheme_end + 3);
    if (origin_host == req.header("host")) return true;
    return is_trusted_proxy(settings_.trusted_proxies, req.peer_address) && origin_host == req.header("x-forwarded-host") &&
           !origin_host.empty();
}

http_response router::https_redirect(const http_request& req) const {
    std::string host(req.header("host"));
    if (host.empty()) host = "localhost";
    if (host.front() == '[') {
        if (const auto close = host.find(']'); close != std::string::npos) host = host.substr(0, close + 1);
    } else if (const auto colon = host.find(':'); colon != std::string::npos) {
        host = host.substr(0, colon);
    }
    const auto port = settings_.public_port;
    const auto location = "https://" + host + (port == 443 || port == 0 ? "" : ":" + std::to_string(port)) + req.target;
    auto res = api_error(308, "use_https", "This server only speaks HTTPS: " + location);
    res.set_header("Location", location);
    return res;
}

}  // namespace voice_broker
