// admin_api: the operator's endpoints under /api/admin/ (docs/API.md, "Admin API"), as decisions
// and answers with no I/O, like session_api: parse_admin_api() checks a request and returns an
// immediate answer or one admin_call; the session service checks the credentials (admin_auth),
// runs the call against the store, and answers with the functions below.
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/session_store.hpp"
#include "voice_broker/time.hpp"
#include "voice_broker/usage_tracker.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

namespace voice_broker {

struct admin_call {
    enum class kind { login, login_status, logout, state, end_session, end_all, remove_queued, pause, resume, limits };
    kind what = kind::state;
    std::string token;           // login
    std::uint64_t entry_id = 0;  // end_session, remove_queued
    limits_change limits;        // limits
    bool changes_state = false;  // needs a same-origin Origin
};

std::variant<http_response, admin_call> parse_admin_api(const http_request& req);

// What the console shows besides the store's view: this instance's own knowledge.
struct admin_context {
    std::string instance;
    bool redis = false;
    bool store_healthy = true;
    realtime_mode mode = realtime_mode::token;
    usage_today today;
    struct upstream_health {
        std::optional<unsigned> last_error_status;
        std::string last_error_code;
        steady_time last_error_at{};
        std::optional<double> latency_p50_ms, latency_p90_ms;
    } upstream;
    std::size_t connections = 0;
    // The cost guard's: today's real cost (null: no sideband), the budget (null: none set), the
    // real cost so far of the sessions it watches, and the end of a quota pause.
    nlohmann::json real_cost_usd;
    nlohmann::json budget;
    std::map<std::uint64_t, double> session_costs_usd;
    std::optional<std::chrono::system_clock::time_point> quota_paused_until;
};

// The state document: GET /api/admin/state and the console's pushes.
nlohmann::json admin_state_document(const store_admin_view& view, const admin_context& ctx, steady_time now,
                                    const wall_clock_mapping& wall_clock);

// "203.0.113.x", "2001:db8:1::x": enough to tell visitors apart, not enough to find them.
std::string mask_address(const std::string& address);

http_response admin_unauthorized();
http_response admin_disabled();
http_response admin_bad_origin();

}  // namespace voice_broker
