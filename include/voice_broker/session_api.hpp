// session_api: the /api/session?action=... endpoints.  handle_session_api() reads the request,
// changes the broker and the other state in its context (no I/O of its own), and returns the
// answer, or the upstream work the service must do to make it (minting a key, relaying an SDP
// offer).  It runs on the session service's strand; whatever it changes in the broker shows up
// as broker events, which the service dispatches afterwards.
#pragma once

#include "voice_broker/auth_throttle.hpp"
#include "voice_broker/config.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/session_broker.hpp"
#include "voice_broker/usage_tracker.hpp"

#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace voice_broker {

struct upstream_work {
    enum class kind { mint_token, relay_offer };
    kind what;
    std::uint64_t entry_id = 0;    // the session it is for
    std::chrono::seconds ttl{60};  // mint: already clamped to the time left and 10..7200
    std::string sdp_offer;         // relay
};

struct api_outcome {
    http_response response;                // final, unless `upstream` is set
    std::optional<upstream_work> upstream{};  // the service completes the answer
};

// Every upstream call a session opened (up to a few: one per key or relayed offer, plus page
// reloads), so that all of them are hung up when the session ends.
using call_registry = std::unordered_map<std::uint64_t, std::vector<std::string>>;  // entry id -> call ids
inline constexpr std::size_t max_calls_per_session = 8;

struct session_api_context {
    session_broker& broker;
    usage_tracker& usage;
    auth_throttle& admin_throttle;
    const config& settings;
    const wall_clock_mapping& wall_clock;
    steady_time now;
    steady_time started_at;  // server start, for uptimeSeconds
    call_registry& call_ids;
    std::function<std::string()> new_ticket;
    bool shutting_down = false;
};

inline constexpr int max_tokens_per_session = 3;

api_outcome handle_session_api(const http_request& req, session_api_context& ctx);

// 503 not_configured: the answer wherever an upstream call is needed and OPENAI_API_KEY is unset.
http_response openai_not_configured();

// GET or HEAD with action=stats.  The stats answer reads nothing else from the request (no
// header, no other parameter), so every such request gets the same answer at a given moment:
// that is what lets the router serve it from the service's published copy.
bool is_stats_request(const http_request& req);

}  // namespace voice_broker
