// end_reason: why a place (a session, or a wait in the queue) ended.  Shown to the visitor, in
// the logs and in the metrics' ends_by_reason.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace voice_broker {

enum class end_reason {
    expired,    // the session's time was up
    left,       // the visitor left
    forced,     // the operator ended it (forceEndAll, the console)
    abandoned,  // the visitor was gone (no heartbeat, no channel, no confirmation)
    shutdown,   // the server stopped (memory mode)
    removed,    // the operator took a waiting visitor out of the queue
    idle,       // nobody spoke for SILENCE_TIMEOUT_SECONDS (the cost guard)
    call_ended, // the session's call ended and no other came within CALL_LOST_GRACE_SECONDS
};

inline constexpr std::array<end_reason, 8> all_end_reasons{
    end_reason::expired,  end_reason::left,    end_reason::forced, end_reason::abandoned,
    end_reason::shutdown, end_reason::removed, end_reason::idle,   end_reason::call_ended};

std::string_view to_string(end_reason r);

}  // namespace voice_broker
