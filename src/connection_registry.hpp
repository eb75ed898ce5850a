// connection_registry: every live connection, so that a shutdown can ask each to wind down and
// learn when the last one has gone.  Owned by server_context; any thread may use it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace voice_broker {

// A live connection the server can ask to wind down (two-phase shutdown).
class connection {
public:
    virtual ~connection() = default;
    // Called from any thread; the connection posts to its own thread.
    virtual void begin_shutdown() = 0;
};

class connection_registry {
public:
    std::uint64_t add(std::weak_ptr<connection> c);
    void remove(std::uint64_t id);
    void shutdown_all();
    std::size_t size() const;
    // Calls `f` once, as soon as no connection is left (at once when there is none).
    void when_empty(std::function<void()> f);

private:
    mutable std::mutex mutex_;
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::uint64_t, std::weak_ptr<connection>> live_;
    std::function<void()> on_empty_;
};

}  // namespace voice_broker
