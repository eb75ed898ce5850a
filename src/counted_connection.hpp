// counted_connection: one open connection's share of MAX_CONNECTIONS (and of the
// open_connections gauge).  It moves with the socket from the HTTP session to the WebSocket
// session and gives the count back when the last owner is destroyed.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace voice_broker {

class counted_connection {
public:
    explicit counted_connection(std::atomic<std::int64_t>* counter) : counter_(counter) {}
    counted_connection(counted_connection&& other) noexcept : counter_(std::exchange(other.counter_, nullptr)) {}
    counted_connection& operator=(counted_connection&&) = delete;
    ~counted_connection() {
        if (counter_) counter_->fetch_sub(1, std::memory_order_relaxed);
    }

private:
    std::atomic<std::int64_t>* counter_;
};

}  // namespace voice_broker
