#include "voice_broker/end_reason.hpp"

namespace voice_broker {

std::string_view to_string(end_reason r) {
    switch (r) {
    case end_reason::expired: return "expired";
    case end_reason::left: return "left";
    case end_reason::forced: return "forced";
    case end_reason::abandoned: return "abandoned";
    case end_reason::shutdown: return "shutdown";
    case end_reason::removed: return "removed";
    case end_reason::idle: return "idle";
    case end_reason::call_ended: return "call_ended";
    }
    return "left";
}

}  // namespace voice_broker
