#include "voice_broker/responder.hpp"

#include "voice_broker/api_response.hpp"

#include <spdlog/spdlog.h>

namespace voice_broker {

void responder::abandon() noexcept {
    auto send = std::exchange(send_, nullptr);
    if (!send) return;
    try {
        spdlog::error("a request was dropped without an answer; answering 500");
        send(api_error(500, "internal_error", "The server failed to answer this request; try again."));
    } catch (...) {
        // Nothing more can be done for this request; the connection's own deadline closes it.
    }
}

}  // namespace voice_broker
