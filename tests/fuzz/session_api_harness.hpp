// The session API of today (handle_session_api over a real session_broker), set up the way the
// session service sets it up, with deterministic tickets ("tk1_fuzzticket000000", "tk2_...") so
// that a seed can name them; plus the properties every answer must have.  Shared by
// fuzz_http_api, fuzz_call_body and fuzz_sdp_offer.
//
// Written against the API before the clarity refactor (issue 11): adapt here when it lands.
#pragma once

#include "fuzz_support.hpp"

#include "voice_broker/config.hpp"
#include "voice_broker/session_api.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>

namespace voice_broker::fuzzing {

inline const std::string admin_token = "fuzz-admin-token-0123456789abcdef";
inline const std::string openai_key = "sk-fuzz-openai-key-0123456789abcdef";

inline std::string fuzz_ticket(int n) { return "tk" + std::to_string(n) + "_fuzzticket000000"; }

class api_harness {
public:
    explicit api_harness(realtime_mode mode = realtime_mode::token) {
        settings_.admin_token = admin_token;
        settings_.openai.api_key = openai_key;
        settings_.openai.mode = mode;
        settings_.session.max_concurrent_users = 1;
        settings_.session.max_queue_length = 8;
        settings_.session.session_duration = std::chrono::seconds{120};
        settings_.session.warnings = {std::chrono::seconds{60}, std::chrono::seconds{30}};
        reset();
    }

    void reset() {
        broker_.emplace(settings_.session);
        usage_.emplace(settings_.cost_per_minute_usd);
        throttle_.emplace();
        calls_.clear();
        issued_ = 0;
        now_ = start_;
    }

    config& settings() { return settings_; }
    session_broker& broker() { return *broker_; }
    const call_registry& calls() const { return calls_; }
    steady_time now() const { return now_; }

    // Moves time on and lets the broker act on its deadlines, as the service's timer does.
    void advance(std::chrono::seconds by) {
        now_ += by;
        broker_->advance(now_);
        broker_->take_events();
    }

    api_outcome call(const http_request& req, bool shutting_down = false) {
        session_api_context ctx{*broker_, *usage_, *throttle_, settings_, clock_, now_, start_ - std::chrono::seconds{100}, calls_,
                                [this] { return fuzz_ticket(++issued_); }, shutting_down};
        auto out = handle_session_api(req, ctx);
        broker_->take_events();
        return out;
    }

    // A request as http_session builds it for the router.
    static http_request request(std::string method, std::string target, std::vector<std::pair<std::string, std::string>> headers = {},
                                std::string body = {}) {
        http_request req;
        req.method = std::move(method);
        req.target = std::move(target);
        const auto q = req.target.find('?');
        req.path = req.target.substr(0, q);
        if (q != std::string::npos) req.query = req.target.substr(q + 1);
        req.headers = std::move(headers);
        req.body = std::move(body);
        req.client_address = "203.0.113.7";
        req.request_id = "fuzz";
        return req;
    }

private:
    config settings_;
    std::optional<session_broker> broker_;
    std::optional<usage_tracker> usage_;
    std::optional<auth_throttle> throttle_;
    const steady_time start_ = steady_time{} + std::chrono::hours{1000};
    wall_clock_mapping clock_{start_, std::chrono::system_clock::time_point{} + std::chrono::seconds{1795514400}};
    steady_time now_ = start_;
    call_registry calls_;
    int issued_ = 0;
};

// What every answer must satisfy: a known status; JSON with {"error":{"code","message"}} for an
// error; Allow on 405; no secret anywhere; upstream work only for token/connect, for the ticket
// the request carried.
inline void check_api_answer(const http_request& req, const api_outcome& out) {
    const std::string where = req.method + " " + req.target;
    if (out.upstream) {
        const auto& work = *out.upstream;
        const auto ticket = request_ticket(req);
        FUZZ_CHECK(ticket && work.ticket == *ticket, where);
        const auto action = req.query_param("action");
        if (work.what == upstream_work::kind::mint_token) {
            FUZZ_CHECK(action == "token" && work.ttl >= std::chrono::seconds{10} && work.ttl <= std::chrono::seconds{7200}, where);
        } else {
            FUZZ_CHECK(action == "connect" && work.sdp_offer == req.body && work.sdp_offer.rfind("v=0", 0) == 0, where);
        }
        return;
    }
    const auto& res = out.response;
    static const std::set<unsigned> known{200, 400, 401, 403, 404, 405, 409, 413, 415, 426, 429, 503};
    FUZZ_CHECK(known.count(res.status) == 1, where + " -> " + std::to_string(res.status));
    const auto body = res.body_view();
    FUZZ_CHECK(body.find(admin_token) == std::string_view::npos && body.find(openai_key) == std::string_view::npos, where);
    for (const auto& [name, value] : res.headers) {
        FUZZ_CHECK(value.find(admin_token) == std::string::npos && value.find(openai_key) == std::string::npos, where);
        FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos, where + "\n" + name + ": " + value);
    }
    const auto doc = nlohmann::json::parse(body, nullptr, false);
    FUZZ_CHECK(doc.is_object(), where + "\n" + std::string(body));
    if (res.status >= 400) {
        FUZZ_CHECK(doc.contains("error") && doc["error"]["code"].is_string() && doc["error"]["message"].is_string(),
                   where + "\n" + std::string(body));
    }
    if (res.status == 405) FUZZ_CHECK(!res.header("Allow").empty(), where);
}

}  // namespace voice_broker::fuzzing
