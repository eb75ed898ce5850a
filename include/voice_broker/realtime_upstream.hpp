// realtime_upstream: what the session service needs from OpenAI, as an interface so the broker
// shell does not depend on libcurl and tests can substitute it.  Callbacks may run on any thread.
#pragma once

#include "voice_broker/http_message.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace voice_broker {

class realtime_upstream {
public:
    struct call_result {
        http_response response;              // what to answer the page
        std::optional<std::string> call_id;  // relay: the call opened upstream (a validated id)
        // A call the upstream opened although its answer had to be refused (a body that is not
        // SDP, an error status that still carried a Location): it exists and is billed, so the
        // caller must hang it up at once.  Validated like call_id.
        std::optional<std::string> orphan_call_id{};
        // OpenAI answered insufficient_quota (the account is out of credit): the response is 503
        // upstream_quota; pause admissions for QUOTA_PAUSE_SECONDS.
        bool quota_exhausted = false;
    };

    struct mint_result {
        http_response response;
        bool quota_exhausted = false;  // as in call_result
    };

    virtual ~realtime_upstream() = default;

    // Mints an ephemeral key; answers the page's token request (200 or an error).
    virtual void mint_token(std::chrono::seconds ttl, std::function<void(http_response)> done) = 0;

    // The same, telling also whether the account is out of credit.  The default (for upstreams
    // that cannot tell) never reports it.
    virtual void mint(std::chrono::seconds ttl, std::function<void(mint_result)> done) {
        mint_token(ttl, [done = std::move(done)](http_response res) { done({std::move(res), false}); });
    }

    // Relay mode: forwards the SDP offer with the real key; answers 201 with the SDP answer.
    // Never repeated once sent: a second attempt could open a second billed call.
    virtual void relay_offer(std::string sdp_offer, std::function<void(call_result)> done) = 0;

    // Ends a call upstream; fire and forget (failures are logged and counted).  An id that is not
    // a valid call id (realtime_call_id.hpp) is refused without a request.
    virtual void hang_up(std::string call_id) = 0;

    // Sends what is still pending (hang-ups at shutdown) within a short drain, then makes no
    // more callbacks.  The server calls it after its I/O threads have ended, so that no
    // callback can outlive the objects it refers to.
    virtual void close() {}
};

}  // namespace voice_broker
