// status_renderer: the one serializer of a visitor's status document (docs/API.md), for the HTTP
// answers of join/status/heartbeat and for the {"type":"status",...} pushes of the live channel.
//
// A broadcast sends this document to every waiting visitor at once, so it is written straight
// into one reserved string, with the "limits" member (the same for everyone until a reload)
// rendered once per renderer.  Keys come in sorted order, as a JSON object dump would give them.
#pragma once

#include "voice_broker/admission_hold.hpp"
#include "voice_broker/session_broker.hpp"
#include "voice_broker/session_limits.hpp"
#include "voice_broker/time.hpp"

#include <string>

namespace voice_broker {

class status_renderer {
public:
    // `hold`: admissions are held by the cost guard; waiting visitors are told why and until when.
    status_renderer(const session_limits& limits, const wall_clock_mapping& wall_clock,
                    const admission_hold* hold = nullptr);

    // The body of an HTTP answer.
    std::string answer(const entry_status& s) const { return render(s, false); }
    // The live channel's push: the same document with "type":"status".
    std::string push(const entry_status& s) const { return render(s, true); }

private:
    std::string render(const entry_status& s, bool as_push) const;

    std::string limits_;  // the "limits" member, already rendered
    std::string hold_;    // the "admissionPaused" member's value, already rendered; empty: none
    wall_clock_mapping wall_clock_;
};

}  // namespace voice_broker
