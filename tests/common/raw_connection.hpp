// A hostile client's connection: raw bytes over TCP or TLS, with nothing parsed and every wait
// bounded.  For tests that send what no well-behaved client would (headers split at odd places,
// endless chunk extensions, smuggled requests, frames glued to an upgrade) and watch what the
// server answers while they are still sending.  Plain OpenSSL on a blocking socket with poll()
// deadlines; no Beast, so it compiles in a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace voice_broker::testing {

class raw_connection {
public:
    struct options {
        bool tls = false;
        int receive_buffer = 0;  // bytes (SO_RCVBUF, set before connect); 0: the kernel's default
        std::chrono::milliseconds timeout{5000};
    };

    // Connects to 127.0.0.1:port (and does the TLS handshake); throws std::runtime_error on failure.
    raw_connection(std::uint16_t port, options opts);
    explicit raw_connection(std::uint16_t port) : raw_connection(port, options{}) {}
    ~raw_connection();
    raw_connection(const raw_connection&) = delete;
    raw_connection& operator=(const raw_connection&) = delete;

    // Sends everything; false when the server closed or reset the connection, or the timeout
    // passed with the bytes not taken (a server that stopped reading).
    bool send(std::string_view bytes);

    // True when the server sent something (appended to received()) or closed within `wait`.
    // TLS records that carry no data (session tickets) do not count.
    bool answer_within(std::chrono::milliseconds wait);

    // Receives until `needle` has arrived (returns true), the server closes, or the timeout.
    // Everything received is appended to received().
    bool receive_until(std::string_view needle, std::chrono::milliseconds timeout);
    // Receives until the server closes (true) or the timeout (false).
    bool receive_until_closed(std::chrono::milliseconds timeout);
    const std::string& received() const { return received_; }
    bool closed_by_server() const { return peer_closed_; }

private:
    // One read with a deadline; false at the deadline.  Sets peer_closed_ on EOF or error.
    bool receive_some(std::chrono::steady_clock::time_point deadline);
    bool wait_for(short events, std::chrono::steady_clock::time_point deadline);

    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    std::chrono::milliseconds timeout_;
    std::string received_;
    bool peer_closed_ = false;
};

// Resident memory of this process, from /proc/self/statm.
std::size_t resident_bytes();

}  // namespace voice_broker::testing
