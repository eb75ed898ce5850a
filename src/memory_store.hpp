// memory_store: the session store of a single instance.  The state is a session_broker in this
// process, owned by the session service's strand; one timer on that strand runs the broker's
// deadlines.  It also remembers each session's upstream calls, so that they are hung up when the
// session ends.
#pragma once

#include "voice_broker/session_store.hpp"

#include <functional>
#include <memory>

namespace boost::asio {
class any_io_executor;
}

namespace voice_broker {

class memory_store : public session_store {
public:
    // What the timer does when it fires: processes every deadline up to now.  (Tests that move
    // the clock by hand call it; the timer itself waits on the steady clock.)
    virtual void run_due_deadlines() = 0;
};

// `strand` is the service's; `clock` its notion of now.
std::unique_ptr<memory_store> make_memory_store(const boost::asio::any_io_executor& strand, const session_limits& limits,
                                                std::function<steady_time()> clock);

}  // namespace voice_broker
