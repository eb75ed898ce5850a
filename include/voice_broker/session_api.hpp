// session_api: the /api/session?action=... endpoints, as decisions and answers with no I/O.
//
// parse_session_api() reads a request and decides: an answer right away (a wrong method, a
// missing ticket, a malformed body, OpenAI not configured...) or one api_call for the session
// service, which runs it against the store (and the upstream) and then builds the answer with
// the answer_* functions below.  So every rule about requests is here, every rule about shared
// state is in the store, and the service only carries calls from one to the other.
#pragma once

#include "voice_broker/admission_hold.hpp"
#include "voice_broker/config.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/session_broker.hpp"
#include "voice_broker/session_store.hpp"
#include "voice_broker/usage_tracker.hpp"

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <variant>

namespace voice_broker {

class admin_auth;

// What a request asks for, once the request itself checked out.
struct api_call {
    enum class kind { join, status, heartbeat, leave, stats, force_end_all, token, record_call, connect };
    kind what = kind::status;
    std::optional<std::string> ticket;  // every kind but stats and force_end_all (optional for join)
    std::string call_id;                // record_call
    std::string sdp_offer;              // connect
    bool russian = false;               // X-Visitor-Language: ru (the wrap-up's language)
};

inline constexpr int max_tokens_per_session = 3;
inline constexpr std::size_t max_calls_per_session = 8;

std::variant<http_response, api_call> parse_session_api(const http_request& req, const config& settings);

// forceEndAll's admin check: nullopt when the x-admin-token is right; otherwise the refusal
// (disabled, throttled, or wrong: a wrong token is counted against the address, in the throttle
// the console's sign-in shares).
std::optional<http_response> check_admin_token(const http_request& req, admin_auth& auth, steady_time now);

// GET or HEAD with action=stats.  The stats answer reads nothing else from the request (no
// header, no other parameter), so every such request gets the same answer at a given moment:
// that is what lets the router serve it from the service's published copy.
bool is_stats_request(const http_request& req);

// ---- answers ---------------------------------------------------------------------------------

// `hold`: the cost guard holds admissions (waiting visitors are told why and until when).
http_response answer_status(const entry_status& s, const session_limits& limits, const wall_clock_mapping& wall_clock,
                            const admission_hold* hold = nullptr);
http_response answer_join(const join_outcome& outcome, const session_limits& limits, const wall_clock_mapping& wall_clock,
                          bool secure, const admission_hold* hold = nullptr);
// A new visitor while the cost guard holds admissions: 503 budget_exhausted (until the budget's
// reset) or upstream_quota (until the quota pause ends), with Retry-After.  The queue is kept.
http_response refuse_join(const admission_hold& hold, std::chrono::sys_seconds now);
http_response answer_leave(const entry_status& after, bool secure);
// `cost`: the cost guard's section (null: none).
http_response answer_stats(const store_stats& stats, const usage_today& today, steady_time now, steady_time started_at,
                           const wall_clock_mapping& wall_clock, const nlohmann::json& cost);
http_response answer_force_end_all(std::size_t ended);
// The refusal of a token or connect whose reservation failed; nullopt when it was reserved.
std::optional<http_response> refuse_reservation(const token_reservation& r);
// Why this status may not record a call (not active; relay mode tracks its own), or nullopt.
std::optional<http_response> refuse_call_recording(const entry_status& s, const config& settings);
http_response answer_call_recording(call_recording r);
// The key's lifetime: at most the ttl setting and the time left, within the API's 10..7200 s.
std::chrono::seconds token_ttl(const entry_status& holder, const openai_settings& settings);

http_response unknown_ticket();
// 503 not_configured: the answer wherever an upstream call is needed and OPENAI_API_KEY is unset.
http_response openai_not_configured();
// 503 upstream_quota with Retry-After: a quota pause (insufficient_quota) is on.
http_response upstream_quota_paused(std::int64_t retry_after_seconds);
// 503 store_unavailable with Retry-After: the shared store cannot be reached right now.
http_response store_unavailable();
// 503 shutting_down: no joins while the server stops.
http_response shutting_down();
// 429 with Retry-After: JOIN_RATE_PER_ADDRESS reached.
http_response too_many_joins(std::int64_t retry_after_seconds);
// 429: MAX_TICKETS_PER_ADDRESS live places already held from this address.
http_response too_many_tickets(std::size_t limit);

}  // namespace voice_broker
