// upstream_calls: the OpenAI side of a visitor's session.  Keys minted for the slot holder (token
// mode), offers relayed (relay mode), the calls either one opened recorded in the store, watched
// by the cost guard, and hung up when their session ends.  A call id that exists upstream is
// billed, so none is ever dropped: it is recorded, or it is hung up at once.
//
// Lives on the session service's strand, owned by it, and shares its store, cost guard and
// console.  Work that leaves for the upstream keeps the service alive (`keep_alive`) and comes
// back on the strand.
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/realtime_upstream.hpp"
#include "voice_broker/responder.hpp"
#include "voice_broker/session_api.hpp"
#include "voice_broker/session_store.hpp"
#include "voice_broker/time.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <string>

namespace voice_broker {

class admin_console;
class cost_guard;
class metrics;

class upstream_calls {
public:
    struct hooks {
        std::function<steady_time()> clock;
        std::function<std::shared_ptr<void>()> keep_alive;  // the owner, while a request is upstream
        std::function<void()> note_state;                     // after every store answer
    };

    upstream_calls(boost::asio::any_io_executor strand, const config& settings, metrics& counters,
                   std::shared_ptr<realtime_upstream> upstream, session_store& store, cost_guard& cost,
                   admin_console& console, hooks h);

    // action=token and action=connect: the holder's reservation, then a key or a relayed offer.
    void reserve(api_call call, responder respond);
    // action=call: the page reports the call it opened with its key.
    void record(api_call call, responder respond);
    // Ends a call upstream (a session ended, or nobody can keep the call).
    void hang_up(const std::string& call_id);

private:
    void mint(const entry_status& holder, responder respond);
    void relay(const entry_status& holder, api_call call, responder respond);
    void note_upstream(http_response& res, steady_time started, bool quota_exhausted);
    void adopt_relayed_call(const entry_status& holder, const std::string& call_id, bool russian);
    template <class Result, class Answer>
    auto answering(responder respond, Answer answer);

    boost::asio::any_io_executor strand_;
    const config& settings_;
    metrics& metrics_;
    std::shared_ptr<realtime_upstream> upstream_;
    session_store& store_;
    cost_guard& cost_;
    admin_console& console_;
    hooks hooks_;
};

}  // namespace voice_broker
