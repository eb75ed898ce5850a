// server_context: what every connection shares, owned by the server.  Sessions hold a
// shared_ptr to it, so it outlives the last connection.
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/net.hpp"
#include "voice_broker/security_headers.hpp"
#include "tls_socket.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace voice_broker {

class metrics;
class router;
class session_service;

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

// Counts an open connection for MAX_CONNECTIONS and the metrics; moves with the socket from
// the HTTP session to the WebSocket session.
class connection_slot {
public:
    explicit connection_slot(std::atomic<std::int64_t>* counter) : counter_(counter) {}
    connection_slot(connection_slot&& other) noexcept : counter_(std::exchange(other.counter_, nullptr)) {}
    connection_slot& operator=(connection_slot&&) = delete;
    ~connection_slot() {
        if (counter_) counter_->fetch_sub(1, std::memory_order_relaxed);
    }

private:
    std::atomic<std::int64_t>* counter_;
};

struct server_context {
    config settings;
    security_headers headers;
    std::shared_ptr<router> routes;
    std::shared_ptr<session_service> service;
    metrics& stats;
    connection_registry registry;
    std::atomic<bool> shutting_down{false};
    std::uint16_t public_port = 0;  // for redirects to https

    server_context(config c, std::shared_ptr<router> r, std::shared_ptr<session_service> s, metrics& m)
        : settings(std::move(c)), headers(settings.openai.base_url), routes(std::move(r)), service(std::move(s)), stats(m) {}
};

// Logs an I/O error unless it is one of the expected ways a connection ends.
void fail(const error_code& ec, const char* what, std::uint64_t connection_id);

// A TLS connection: OpenSSL reading and writing the connection's socket itself.
using tls_stream = tls_socket;

// Entry points between the translation units, so each heavy template is compiled once.
// Each session reads its connection from the first byte (TLS detection only peeks).
void run_plain_http(tcp_socket socket, std::shared_ptr<server_context> ctx, connection_slot slot, bool redirect_to_https);
void run_tls_http(tls_stream stream, std::shared_ptr<server_context> ctx, connection_slot slot);

}  // namespace voice_broker

namespace voice_broker {

// The live channel, after the HTTP session saw a WebSocket upgrade for it.
struct websocket_handover {
    http::request<http::string_body> upgrade;
    std::string ticket;
    std::string client_address;
    std::string request_id;
};
void run_websocket(tcp_socket socket, websocket_handover handover, std::shared_ptr<server_context> ctx,
                   connection_slot slot);
void run_websocket(tls_stream stream, websocket_handover handover, std::shared_ptr<server_context> ctx,
                   connection_slot slot);

}  // namespace voice_broker
