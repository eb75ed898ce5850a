#include "openai_replies.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/realtime_call_id.hpp"
#include "voice_broker/time.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>
#include <ctime>

namespace voice_broker {

namespace {

nlohmann::json error_object(const upstream_reply& r) {
    const auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (!doc.is_discarded() && doc.is_object() && doc.contains("error") && doc["error"].is_object()) return doc["error"];
    return nlohmann::json::object();
}

std::string upstream_message(const upstream_reply& r) {
    const auto e = error_object(r);
    if (!e.empty()) {
        std::string out = e.value("message", "");
        if (e.contains("code") && e["code"].is_string()) out += " (code " + e["code"].get<std::string>() + ")";
        return out.substr(0, 300);
    }
    return r.body.substr(0, 120);
}

std::optional<double> parse_number(const std::string& text) {
    if (text.empty()) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || !std::isfinite(v)) return std::nullopt;
    return v;
}

// "Wed, 21 Oct 2015 07:28:00 GMT" (RFC 9110's IMF-fixdate).
std::optional<std::chrono::system_clock::time_point> parse_http_date(const std::string& text) {
    std::tm tm{};
    const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0') return std::nullopt;
    return std::chrono::system_clock::from_time_t(::timegm(&tm));
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
    if (is_quota_exhausted(r)) {
        spdlog::error("openai: {} answered {}: the OpenAI account is out of credit: {} (request id {})", what, r.status,
                      upstream_message(r), rid);
        return api_error(503, "upstream_quota",
                         "The OpenAI account is out of credit; the operator must add credit. Try again later.");
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

bool is_quota_exhausted(const upstream_reply& r) {
    if (r.transport != CURLE_OK || r.status != 429) return false;
    const auto e = error_object(r);
    auto is = [&e](const char* key, const char* value) { return e.contains(key) && e[key].is_string() && e[key] == value; };
    return is("type", "insufficient_quota") || is("code", "insufficient_quota") || is("code", "credit_balance_exhausted");
}

retry_decision decide_retry(const upstream_reply& r, bool may_repeat, int attempt, double jitter,
                            std::chrono::system_clock::time_point now) {
    using std::chrono::milliseconds;
    retry_decision out;
    if (r.transport == CURLE_OPERATION_TIMEDOUT) return out;  // the total budget is spent
    if (r.transport != CURLE_OK) {
        // Nothing reached the server when no connection was made; a drop or reset after that may
        // have delivered the request.
        const bool never_sent = r.transport == CURLE_COULDNT_CONNECT;
        const bool maybe_sent = r.transport == CURLE_GOT_NOTHING || r.transport == CURLE_RECV_ERROR ||
                                r.transport == CURLE_SEND_ERROR;
        out.retry = never_sent || (maybe_sent && may_repeat);
    } else {
        if (!may_repeat || is_quota_exhausted(r)) return out;
        if (r.should_retry == "true") out.retry = true;
        else if (r.should_retry == "false") out.retry = false;
        else out.retry = r.status == 408 || r.status == 409 || r.status == 429 || r.status >= 500;
    }
    if (!out.retry) return out;

    // The server's wait: retry-after-ms, then Retry-After (openai-node's order; a zero or
    // unreadable retry-after-ms falls through to Retry-After, as there).
    std::optional<double> wait_ms;
    if (const auto ms = parse_number(r.retry_after_ms); ms && *ms != 0) wait_ms = *ms;
    if (!wait_ms && !r.retry_after.empty()) {
        if (const auto s = parse_number(r.retry_after)) {
            wait_ms = *s * 1000;
        } else if (const auto at = parse_http_date(r.retry_after)) {
            wait_ms = static_cast<double>(std::chrono::duration_cast<milliseconds>(*at - now).count());
        }
    }
    if (!wait_ms) {
        const double seconds = std::min(0.5 * std::pow(2.0, attempt), 8.0) * (1.0 - 0.25 * jitter);
        wait_ms = seconds * 1000;
    }
    out.wait = milliseconds{static_cast<long long>(std::max(0.0, std::min(*wait_ms, 24.0 * 3600 * 1000)))};
    return out;
}

realtime_upstream::mint_result mint_answer(const upstream_reply& r, const openai_settings& settings, metrics& counters) {
    if (auto err = common_errors(r, "POST /v1/realtime/client_secrets", settings, counters)) {
        return {*err, is_quota_exhausted(r)};
    }
    const auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status != 200 || doc.is_discarded() || !doc.is_object() || !doc.contains("value") ||
        !doc["value"].is_string() || !doc.contains("expires_at") || !doc["expires_at"].is_number()) {
        spdlog::error("openai: client_secrets answered {} with a body that is not the documented JSON (request id {})",
                      r.status, r.request_id.empty() ? "-" : r.request_id);
        return {api_error(502, "upstream_bad_response", "OpenAI sent an answer this server does not understand; try again."),
                false};
    }
    const auto expires = std::chrono::system_clock::time_point{std::chrono::seconds{doc["expires_at"].get<long long>()}};
    return {json_response(200, {{"value", doc["value"]},
                                {"expiresAt", format_iso8601(expires)},
                                {"model", settings.model},
                                {"callsUrl", settings.base_url + "/v1/realtime/calls"}}),
            false};
}

realtime_upstream::call_result relay_answer(const upstream_reply& r, const openai_settings& settings, metrics& counters) {
    const auto rid = r.request_id.empty() ? std::string("-") : r.request_id;
    // A Location means a call exists upstream, whatever else the answer says.
    std::optional<std::string> call_id;
    if (r.transport == CURLE_OK && !r.location.empty()) {
        call_id = call_id_from_location(r.location);
        if (!call_id) {
            spdlog::error("openai: calls answered {} with a Location that holds no valid call id; it cannot be hung up "
                          "(request id {})",
                          r.status, rid);
        }
    }
    realtime_upstream::call_result out;
    if (auto err = common_errors(r, "POST /v1/realtime/calls", settings, counters)) {
        out.response = *err;
        out.quota_exhausted = is_quota_exhausted(r);
        out.orphan_call_id = call_id;
    } else if (r.status != 201 || r.body.rfind("v=0", 0) != 0 || !call_id) {
        spdlog::error("openai: calls answered {} without an SDP answer and a call id in Location (request id {})", r.status, rid);
        out.response = api_error(502, "upstream_bad_response", "OpenAI did not return an SDP answer; try again.");
        out.orphan_call_id = call_id;
    } else {
        // The real API may label the SDP text/plain; the page gets application/sdp.
        out.response.status = 201;
        out.response.set_header("Content-Type", "application/sdp");
        out.response.set_header("Cache-Control", "no-store");
        out.response.body = r.body;
        out.call_id = call_id;
    }
    if (out.orphan_call_id) {
        spdlog::warn("openai: call {} was opened although its answer was refused; it must be hung up", *out.orphan_call_id);
    }
    return out;
}

}  // namespace voice_broker
