// session_api: the /api/session?action=... endpoints as a pure function of (request, broker
// state, now).  It runs on the session service's strand; whatever it changes in the broker shows
// up as broker events, which the service dispatches afterwards.  Work that needs the upstream
// (minting a key, relaying an SDP offer) is returned as an upstream_work for the service to do.
#pragma once

#include "voice_broker/auth_throttle.hpp"
#include "voice_broker/config.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/session_broker.hpp"
#include "voice_broker/usage_tracker.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace voice_broker {

struct upstream_work {
    enum class kind { mint_token, relay_offer };
    kind what;
    std::string ticket;
    std::chrono::seconds ttl{60};  // mint: already clamped to the time left and 10..7200
    std::string sdp_offer;         // relay
};

struct api_outcome {
    http_response response;                // final, unless `upstream` is set
    std::optional<upstream_work> upstream; // the service completes the answer
};

// Every upstream call a session opened (up to a few: one per key or relayed offer, plus page
// reloads), so that all of them are hung up when the session ends.
using call_registry = std::unordered_map<std::string, std::vector<std::string>>;  // ticket -> call ids
inline constexpr std::size_t max_calls_per_session = 8;

struct session_api_context {
    session_broker& broker;
    usage_tracker& usage;
    auth_throttle& admin_throttle;
    const config& settings;
    const wall_clock_mapping& clock;
    steady_time now;
    steady_time started_at;  // server start, for uptimeSeconds
    call_registry& call_ids;
    std::function<std::string()> new_ticket;
    bool shutting_down = false;
};

inline constexpr int max_tokens_per_session = 3;
inline constexpr const char* ticket_cookie = "vb_ticket";

api_outcome handle_session_api(const http_request& req, session_api_context& ctx);

// The status document (docs/API.md), shared by the API answers and the WebSocket pushes.
nlohmann::json status_json(const entry_status& s, const session_limits& limits, const wall_clock_mapping& clock);

// Its "limits" member: the same for every visitor until the next reload.
nlohmann::json limits_json(const session_limits& limits);

// GET or HEAD with action=stats.  The stats answer reads nothing else from the request (no
// header, no other parameter), so every such request gets the same answer at a given moment:
// that is what lets the router serve it from the service's published copy.
bool is_stats_request(const http_request& req);

// The visitor's ticket: X-Session-Ticket header, then the vb_ticket cookie.
std::optional<std::string> request_ticket(const http_request& req);

}  // namespace voice_broker
