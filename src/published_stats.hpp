// published_stats: the copy of the stats answer that the router serves on any thread without a
// strand hop, and the rule that says when it may be served.  Written by the session service on
// its strand, read by anyone.
//
// Staleness rule.  The copy is withdrawn, on the strand, as soon as anything that stats shows
// and that is not a function of time changes: the number of holders or of queued visitors, an
// admission or an end (the session list, today's counters), a reload (limits, cost).  The
// service does it before it pushes anything and before the answer to whatever made the change
// is sent, so nobody who learnt of a change can then read a copy from before it.  What is left
// is time itself: uptimeSeconds, each session's remainingSeconds and today's minutes and cost.
// So the copy is served only until the next whole second of uptime, where uptimeSeconds changes
// (it is therefore always exact), and never past the broker's next deadline, where an expiry or
// an abandonment may change who holds a slot.  remainingSeconds, minutesUsed and
// estimatedCostUsd are thus less than a second old, like an answer that took that long to
// arrive; who is active or queued is never wrong.
#pragma once

#include "voice_broker/http_message.hpp"
#include "voice_broker/time.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace voice_broker {

// What stats shows besides time, as the service can tell cheaply that it changed.
struct stats_inputs {
    std::size_t active = 0;
    std::size_t queued = 0;
    std::uint64_t changes = 0;  // admissions, ends and reloads so far
    bool operator==(const stats_inputs&) const = default;
};

class published_stats {
public:
    // Keeps a copy of `answer` (built at `built_at` from `inputs`), served until `fresh_until`.
    void publish(http_response& answer, const stats_inputs& inputs, steady_time fresh_until);

    // Withdraws the copy when `inputs` differ from what it was built from.  Strand only.
    void withdraw_if_changed(const stats_inputs& inputs);

    // The copy, if it is still fresh at `now`.  Any thread.
    std::optional<http_response> fresh(steady_time now) const;

private:
    struct snapshot {
        http_response answer;  // body and header lines are shared: serving it copies two pointers
        steady_time fresh_until;
    };
    std::atomic<std::shared_ptr<const snapshot>> snapshot_;
    std::optional<stats_inputs> published_for_;  // strand only
};

}  // namespace voice_broker
