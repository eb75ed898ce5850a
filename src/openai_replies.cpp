#include "openai_replies.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/time.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace voice_broker {

bool retryable(const upstream_reply& r) {
    if (r.transport == CURLE_OPERATION_TIMEDOUT) return false;  // the total budget is spent
    if (r.transport != CURLE_OK) {
        return r.transport == CURLE_COULDNT_CONNECT || r.transport == CURLE_GOT_NOTHING ||
               r.transport == CURLE_RECV_ERROR || r.transport == CURLE_SEND_ERROR;
    }
    return r.status == 408 || r.status == 409 || r.status == 429 || r.status >= 500;
}

namespace {

std::string upstream_message(const upstream_reply& r) {
    const auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (!doc.is_discarded() && doc.is_object() && doc.contains("error") && doc["error"].is_object()) {
        const auto& e = doc["error"];
        std::string out = e.value("message", "");
        if (e.contains("code") && e["code"].is_string()) out += " (code " + e["code"].get<std::string>() + ")";
        return out.substr(0, 300);
    }
    return r.body.substr(0, 120);
}

// Transport failures and error statuses, the same for every endpoint.
std::optional<http_response> common_errors(const upstream_reply& r, const char* what, const openai_settings& settings,
                                          metrics& counters) {
    const auto rid = r.request_id.empty() ? std::string("-") : r.request_id;
    if (r.transport == CURLE_OPERATION_TIMEDOUT) {
        counters.upstream_timeouts.fetch_add(1, std::memory_order_relaxed);
        spdlog::error("openai: {} timed out after {} s", what, settings.timeout.count());
        return api_error(504, "upstream_timeout", "OpenAI did not answer in time; try again in a moment.");
    }
    if (r.transport != CURLE_OK) {
        spdlog::error("openai: {} failed: {}", what, curl_easy_strerror(r.transport));
        return api_error(502, "upstream_unreachable", "OpenAI could not be reached; try again in a moment.");
    }
    if (r.status >= 200 && r.status < 300) return std::nullopt;
    if (static_cast<std::size_t>(r.status) < counters.upstream_errors_by_status.size()) {
        counters.upstream_errors_by_status[static_cast<std::size_t>(r.status)].fetch_add(1, std::memory_order_relaxed);
    }
    spdlog::error("openai: {} answered {}: {} (request id {})", what, r.status, upstream_message(r), rid);
    if (r.status == 401 || r.status == 403) {
        return api_error(502, "upstream_auth", "OpenAI rejected the API key; check OPENAI_API_KEY.");
    }
    if (r.status == 429) {
        auto res = api_error(503, "upstream_rate_limited", "OpenAI is rate-limiting this server; try again shortly.");
        res.set_header("Retry-After", r.retry_after.empty() ? "5" : r.retry_after);
        return res;
    }
    if (r.status >= 500) return api_error(502, "upstream_error", "OpenAI had an error; try again in a moment.");
    return api_error(502, "upstream_rejected", "OpenAI refused the request (" + std::to_string(r.status) + ").");
}

}  // namespace

http_response mint_answer(const upstream_reply& r, const openai_settings& settings, metrics& counters) {
    if (auto err = common_errors(r, "POST /v1/realtime/client_secrets", settings, counters)) return *err;
    const auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status != 200 || doc.is_discarded() || !doc.is_object() || !doc.contains("value") ||
        !doc["value"].is_string() || !doc.contains("expires_at") || !doc["expires_at"].is_number()) {
        spdlog::error("openai: client_secrets answered {} with a body that is not the documented JSON (request id {})",
                      r.status, r.request_id.empty() ? "-" : r.request_id);
        return api_error(502, "upstream_bad_response", "OpenAI sent an answer this server does not understand; try again.");
    }
    const auto expires = std::chrono::system_clock::time_point{std::chrono::seconds{doc["expires_at"].get<long long>()}};
    return json_response(200, {{"value", doc["value"]},
                               {"expiresAt", format_iso8601(expires)},
                               {"model", settings.model},
                               {"callsUrl", settings.base_url + "/v1/realtime/calls"}});
}

realtime_upstream::call_result relay_answer(const upstream_reply& r, const openai_settings& settings, metrics& counters) {
    if (auto err = common_errors(r, "POST /v1/realtime/calls", settings, counters)) return {*err, std::nullopt};
    const auto slash = r.location.rfind('/');
    const auto call_id = slash == std::string::npos ? std::string{} : r.location.substr(slash + 1);
    if (r.status != 201 || r.body.rfind("v=0", 0) != 0 || call_id.empty()) {
        spdlog::error("openai: calls answered {} without an SDP answer and a Location (request id {})", r.status,
                      r.request_id.empty() ? "-" : r.request_id);
        return {api_error(502, "upstream_bad_response", "OpenAI did not return an SDP answer; try again."), std::nullopt};
    }
    http_response res;
    res.status = 201;
    res.set_header("Content-Type", "application/sdp");
    res.set_header("Cache-Control", "no-store");
    res.body = r.body;
    return {std::move(res), call_id};
}

}  // namespace voice_broker
