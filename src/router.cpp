#include "voice_broker/router.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/session_api.hpp"
#include "voice_broker/session_service.hpp"
#include "voice_broker/static_files.hpp"

#include <nlohmann/json.hpp>

namespace voice_broker {

router::router(std::shared_ptr<session_service> service, metrics& stats, std::shared_ptr<const static_files> files)
    : service_(std::move(service)), metrics_(stats), files_(std::move(files)), started_at_(std::chrono::steady_clock::now()) {}

http_response router::health() const {
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_);
    const bool stopping = shutting_down_.load();
    return json_response(stopping ? 503 : 200, {{"status", stopping ? "shutting_down" : "ok"},
                                                {"version", VOICE_BROKER_VERSION},
                                                {"uptimeSeconds", uptime.count()}});
}

void router::handle(http_request req, std::function<void(http_response)> respond) const {
    const std::string_view path = req.path;
    const bool read = req.method == "GET" || req.method == "HEAD";
    auto finish = [&](http_response res) {
        if (req.method == "HEAD") res.omit_body = true;
        respond(std::move(res));
    };

    if (path == "/api/health") return finish(read ? health() : method_not_allowed("GET, HEAD"));
    if (path == "/metrics") {
        if (!read) return finish(method_not_allowed("GET, HEAD"));
        http_response res;
        res.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        res.set_header("Cache-Control", "no-store");
        res.body = metrics_.render();
        return finish(std::move(res));
    }
    if (path == "/api/session") {
        // Stats is polled by dashboards and monitors: answer it here, on the caller's thread,
        // from the copy the service published, while that copy is fresh.  It is the answer the
        // service would give (same status, headers and bytes), without two strand hops.
        if (is_stats_request(req)) {
            if (auto res = service_->fresh_stats_answer()) return respond(std::move(*res));
        }
        return service_->handle(std::move(req), std::move(respond));
    }
    if (path == live_channel_path) {
        auto res = api_error(426, "upgrade_required", "This is the live channel: open it as a WebSocket.");
        res.set_header("Upgrade", "websocket");
        return finish(std::move(res));
    }
    if (path.rfind("/api/", 0) == 0 || path == "/api") {
        return finish(api_error(404, "not_found", "No such API endpoint; see docs/API.md."));
    }
    if (!read) return finish(method_not_allowed("GET, HEAD"));
    return finish(files_.load()->serve(req));
}

}  // namespace voice_broker
