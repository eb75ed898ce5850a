// realtime_upstream: what the session service needs from OpenAI, as an interface so the broker
// shell does not depend on libcurl and tests can substitute it.  Callbacks may run on any thread.
#pragma once

#include "voice_broker/http_message.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace voice_broker {

class realtime_upstream {
public:
    struct call_result {
        http_response response;              // what to answer the page
        std::optional<std::string> call_id;  // relay: the call opened upstream
    };

    virtual ~realtime_upstream() = default;

    // Mints an ephemeral key; answers the page's token request (200 or an error).
    virtual void mint_token(std::chrono::seconds ttl, std::function<void(http_response)> done) = 0;

    // Relay mode: forwards the SDP offer with the real key; answers 201 with the SDP answer.
    virtual void relay_offer(std::string sdp_offer, std::function<void(call_result)> done) = 0;

    // Ends a call upstream; fire and forget (failures are logged and counted).
    virtual void hang_up(std::string call_id) = 0;

    // Sends what is still pending (hang-ups at shutdown) within a short drain, then makes no
    // more callbacks.  The server calls it after its I/O threads have ended, so that no
    // callback can outlive the objects it refers to.
    virtual void close() {}
};

}  // namespace voice_broker
