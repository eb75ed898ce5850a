// status_renderer: writes the {"type":"status",...} push of the live channel straight into a
// string.  session_service makes one per broadcast and renders every queued visitor with it.
//
// A broadcast sends this document to every waiting visitor at once.  Building it as a
// nlohmann::json object allocates one map node per key and the same "limits" sub-object for
// every visitor.  Here the limits are rendered once per renderer, and each document is one
// reserved string.  The bytes are exactly those of status_json(s) plus "type":"status", dumped
// (keys in nlohmann's sorted order); status_renderer_test holds the two together.
#pragma once

#include "voice_broker/session_broker.hpp"
#include "voice_broker/session_limits.hpp"
#include "voice_broker/time.hpp"

#include <string>

namespace voice_broker {

class status_renderer {
public:
    status_renderer(const session_limits& limits, const wall_clock_mapping& clock);

    std::string render(const entry_status& s) const;

private:
    std::string limits_;  // the "limits" member, already rendered
    wall_clock_mapping clock_;
};

}  // namespace voice_broker
