#include "voice_broker/admission_hold.hpp"

#include <nlohmann/json.hpp>

namespace voice_broker {

const char* to_string(admission_hold::reason r) {
    switch (r) {
    case admission_hold::reason::budget_exhausted: return "budget_exhausted";
    case admission_hold::reason::upstream_quota: return "upstream_quota";
    }
    return "budget_exhausted";
}

std::string render_admission_hold(const admission_hold& hold) {
    // nlohmann's object keeps its keys sorted, as every object of the status document is.
    return nlohmann::json{{"reason", to_string(hold.why)},
                          {"resetsAt", format_iso8601(hold.resumes_at)},
                          {"resetsAtLocal", hold.resumes_at_local},
                          {"timeZone", hold.time_zone}}
        .dump();
}

}  // namespace voice_broker
