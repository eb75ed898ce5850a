// admission_hold: why nobody is admitted right now although a slot may be free, and until when.
//
// The cost guard holds the queue when one more session would not fit today's or this month's
// budget (budget_exhausted, until the budget's reset) or when OpenAI said the account is out of
// credit (upstream_quota, until QUOTA_PAUSE_SECONDS have passed).  Waiting visitors see it in
// their status ("admissionPaused", docs/API.md), and new visitors get it as join's 503.
#pragma once

#include "voice_broker/time.hpp"

#include <string>

namespace voice_broker {

struct admission_hold {
    enum class reason { budget_exhausted, upstream_quota };
    reason why = reason::budget_exhausted;
    bool monthly = false;            // budget_exhausted: the month's budget holds (else the day's)
    std::chrono::sys_seconds resumes_at{};  // the budget's reset, or the end of the quota pause
    std::string resumes_at_local;    // the same instant in BUDGET_TIMEZONE, ISO 8601 with offset
    std::string time_zone;           // BUDGET_TIMEZONE's name
};

const char* to_string(admission_hold::reason r);

// {"reason":...,"resetsAt":...,"resetsAtLocal":...,"timeZone":...}: keys sorted, as the status
// document writes every object.
std::string render_admission_hold(const admission_hold& hold);

}  // namespace voice_broker
