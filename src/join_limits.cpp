#include "join_limits.hpp"

#include "voice_broker/session_api.hpp"

namespace voice_broker {

join_limits::join_limits(const fair_use_limits& limits)
    : tickets_per_address_(limits.tickets_per_address),
      joins_per_address_(limits.joins_per_minute),
      tickets_per_address_held_(limits.tickets_per_address) {}

std::optional<http_response> join_limits::refuse(const std::string& address, bool has_ticket, steady_time now) {
    if (const auto wait = joins_per_address_.take(address, now); wait > 0) return too_many_joins(wait);
    if (!has_ticket && tickets_per_address_ != 0 && tickets_per_address_held_.held(address) >= tickets_per_address_) {
        return too_many_tickets(tickets_per_address_);
    }
    return std::nullopt;
}

void join_limits::joined(std::uint64_t entry_id, const std::string& address) {
    if (tickets_per_address_held_.try_take(address)) addresses_.emplace(entry_id, address);
}

void join_limits::ended(std::uint64_t entry_id) {
    const auto it = addresses_.find(entry_id);
    if (it == addresses_.end()) return;
    tickets_per_address_held_.give_back(it->second);
    addresses_.erase(it);
}

}  // namespace voice_broker
