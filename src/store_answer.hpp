// answering(): turns a store operation's result into an HTTP answer.  The store calls back with
// (error, result); a store that cannot be reached is 503 store_unavailable, anything else goes to
// `answer` with the responder.  `before` runs first, whatever the outcome (the session service
// refreshes its gauges there, before the answer can tell anyone of the change).
#pragma once

#include "voice_broker/responder.hpp"
#include "voice_broker/session_api.hpp"
#include "voice_broker/session_store.hpp"

#include <memory>
#include <utility>

namespace voice_broker {

template <class Result, class Before, class Answer>
auto answering(responder respond, Before before, Answer answer) {
    return [respond = std::make_shared<responder>(std::move(respond)), before = std::move(before),
            answer = std::move(answer)](store_error error, Result result) mutable {
        before();
        if (error != store_error::none) return (*respond)(store_unavailable());
        answer(*respond, std::move(result));
    };
}

}  // namespace voice_broker
