// memory_store: the session store of a single instance.  The state is a session_broker in this
// process, owned by the session service's strand; one timer on that strand runs the broker's
// deadlines.  It also remembers each session's upstream calls (hung up when the session ends)
// and, through restart_files in DATA_DIR, what a restart must not lose: the operator's settings,
// the waiting visitors' places (saved at SIGTERM, restored at start when still fresh), and every
// call of a running session with its deadline (written ahead: after a kill -9 the next start
// hangs each one up at its deadline, or at once).
#pragma once

#include "voice_broker/session_store.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class any_io_executor;
}

namespace voice_broker {

struct memory_store_options {
    session_limits limits;
    std::string data_dir;     // empty: nothing survives a restart (tests)
    std::string instance_id;  // shown in the console
    std::function<steady_time()> clock;
    std::function<std::chrono::system_clock::time_point()> wall_clock;  // default: the system clock
};

class memory_store : public session_store {
public:
    // What the timer does when it fires: processes every deadline up to now.  (Tests that move
    // the clock by hand call it; the timer itself waits on the steady clock.)
    virtual void run_due_deadlines() = 0;
};

// `strand` is the service's.
std::unique_ptr<memory_store> make_memory_store(const boost::asio::any_io_executor& strand, memory_store_options options);

}  // namespace voice_broker
