// slot_schedule: how long each place in the queue may have to wait for a slot, in the worst
// case: every holder stays until its expiry and every visitor admitted before uses a whole
// session.  Plain arithmetic with no I/O; session_broker builds one per status or broadcast.
//
// The rule is a simulation: the next visitor takes the slot that frees first, which then frees
// again one session later.  When all slots free within one session of each other (always, unless
// a reload shortened sessions below what a holder still has), the simulation is periodic: the
// slots come round in the same order every session, so place p waits
//     f[(p-1) mod k] + floor((p-1) / k) * session      (f sorted, k slots)
// which costs O(1) per place instead of O(p log k).  Otherwise the simulation runs, one place at
// a time, only until the slots are back within one session of each other, and the formula takes
// over from there.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace voice_broker {

class slot_schedule {
public:
    using duration = std::chrono::nanoseconds;

    // `frees`: when each slot frees, counted from now (>= 0, any order); `session`: how long each
    // admitted visitor may hold a slot; `places`: how far down the queue wait() will be asked.
    slot_schedule(std::vector<duration> frees, duration session, std::size_t places);

    // The schedule of `slots` slots held by visitors with `holders_left` still to go (>= 0, any
    // order; more holders than slots after a reload lowered the limit: those that finish first
    // free their slot without admitting anyone).
    static slot_schedule for_holders(std::vector<duration> holders_left, std::size_t slots, duration session, std::size_t places);

    // The wait of place `place` (1-based, at most `places`); zero when there are no slots at all.
    duration wait(std::size_t place) const;

    // The same in whole seconds, rounded up, so that it stays an upper bound.
    std::int64_t eta_seconds(std::size_t place) const;

private:
    std::vector<duration> simulated_;  // places 1..simulated_.size(), one by one
    std::vector<duration> cycle_;      // then the slots in the order they free, sorted
    duration session_;
};

}  // namespace voice_broker
