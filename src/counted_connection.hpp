// counted_connection: one open connection's share of MAX_CONNECTIONS (and of the
// open_connections gauge), and of its address's MAX_CONNECTIONS_PER_ADDRESS when it has one.  It
// moves with the socket from the HTTP session to the WebSocket session and gives both back when
// the last owner is destroyed.
#pragma once

#include "voice_broker/fair_use.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

namespace voice_broker {

class counted_connection {
public:
    explicit counted_connection(std::atomic<std::int64_t>* counter) : counter_(counter) {}
    counted_connection(counted_connection&& other) noexcept
        : counter_(std::exchange(other.counter_, nullptr)),
          per_address_(std::exchange(other.per_address_, nullptr)),
          address_(std::move(other.address_)) {}
    counted_connection& operator=(counted_connection&&) = delete;
    ~counted_connection() {
        if (counter_) counter_->fetch_sub(1, std::memory_order_relaxed);
        if (per_address_) per_address_->give_back(address_);
    }

    // Counts the connection against its address too (taken by the caller: try_take succeeded).
    void hold_address_share(keyed_quota& per_address, std::string address) {
        per_address_ = &per_address;
        address_ = std::move(address);
    }

private:
    std::atomic<std::int64_t>* counter_;
    keyed_quota* per_address_ = nullptr;
    std::string address_;
};

}  // namespace voice_broker
