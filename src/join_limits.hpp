// join_limits: what one address may join (JOIN_RATE_PER_ADDRESS joins a minute, at most
// MAX_TICKETS_PER_ADDRESS live places), checked before a new place is made.  A place joined
// through this instance counts against its address until it ends.  On the service's strand.
#pragma once

#include "voice_broker/fair_use.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace voice_broker {

class join_limits {
public:
    explicit join_limits(const fair_use_limits& limits);

    // A refusal (429) for this join, or nothing.  A visitor who sends a ticket may be asking for
    // the place they hold, so only the rate applies to them; the store tells the rest.
    std::optional<http_response> refuse(const std::string& address, bool has_ticket, steady_time now);
    void joined(std::uint64_t entry_id, const std::string& address);
    void ended(std::uint64_t entry_id);

private:
    std::size_t tickets_per_address_;
    keyed_rate joins_per_address_;
    keyed_quota tickets_per_address_held_;
    std::unordered_map<std::uint64_t, std::string> addresses_;  // places joined here -> address
};

}  // namespace voice_broker
