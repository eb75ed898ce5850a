// tls_socket: the server side of a TLS connection, with OpenSSL reading and writing the
// non-blocking TCP socket itself, as nginx does.  Owned by the session that accepted it
// (http_session, then websocket_session); lives on that session's one I/O thread.
//
// Why not asio::ssl::stream: it keeps ~70 KB per connection (two 17 KB vectors in stream_core and
// a BIO pair with two 17 KB buffers), zero-filled on every accept.  That is ~13 µs of
// malloc/memset per new connection and 74-80 KB per idle wss client.  Here the only buffers are
// OpenSSL's record buffers, and SSL_MODE_RELEASE_BUFFERS frees them while a connection is idle.
//
// Every operation is the same loop: make the SSL call; on WANT_READ / WANT_WRITE wait for the
// socket to be ready (async_wait, no bytes read by Asio) and call again.  One read and one write
// may be outstanding at once, as a WebSocket needs; no locking, since a connection never changes
// thread.  OpenSSL holds at most one half-sent record per connection, and only the call that
// left it may finish it: while one operation has a record parked, the others wait for the socket
// to take it (see parked_).  Errors are the ones asio::ssl::stream gives, so session code written
// for it still works.
//
// Hardening after nginx's ngx_event_openssl.c: renegotiation is refused on each connection (and
// one that starts anyway ends it), the thread's error queue is cleared before every OpenSSL call,
// and the synchronous shutdown has a deadline.
#pragma once

#include "voice_broker/net.hpp"

#include <boost/beast/websocket/teardown.hpp>
#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <iterator>
#include <type_traits>
#include <utility>

namespace voice_broker {

class tls_socket {
public:
    using executor_type = io_executor;
    using next_layer_type = tcp_socket;
    using lowest_layer_type = tcp_socket;  // so beast::get_lowest_layer() yields the TCP socket

    // Throws boost::system::system_error when OpenSSL cannot make the connection object.
    tls_socket(tcp_socket socket, ssl::context& ctx);
    tls_socket(tls_socket&& other) noexcept;
    tls_socket& operator=(tls_socket&& other) noexcept;
    ~tls_socket();

    executor_type get_executor() { return socket_.get_executor(); }
    tcp_socket& next_layer() { return socket_; }
    tcp_socket& lowest_layer() { return socket_; }
    SSL* native_handle() { return ssl_; }

    // Keeps OpenSSL's record buffers (~34 KB) between reads, saving a malloc/free pair per
    // record: for busy keep-alive HTTP connections.  Idle WebSockets should not call it.
    void keep_buffers();

    // Completion signature void(error_code).
    template <class Token>
    auto async_handshake(Token&& token) {
        return start<false, Token>(token, operation::handshake,
                                   [](tls_socket& s, error_code& ec, std::size_t&) { return s.handshake_once(ec); });
    }

    // Reads into the first non-empty buffer, like ssl::stream.  void(error_code, std::size_t)
    template <class MutableBufferSequence, class Token>
    auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
        return start<true, Token>(token, operation::read, [buffers](tls_socket& s, error_code& ec, std::size_t& n) {
            return s.read_once(first_non_empty(buffers), ec, n);
        });
    }

    // Writes at most one TLS record (16 KB) per call.  void(error_code, std::size_t)
    template <class ConstBufferSequence, class Token>
    auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
        return start<true, Token>(token, operation::write, [buffers](tls_socket& s, error_code& ec, std::size_t& n) {
            return s.write_once(gather(buffers), ec, n);
        });
    }

    // Sends close_notify and completes; does not wait for the peer's (the TCP close follows, and
    // waiting would let a silent client hold the connection).  void(error_code)
    template <class Token>
    auto async_shutdown(Token&& token) {
        return start<false, Token>(token, operation::shutdown,
                                   [](tls_socket& s, error_code& ec, std::size_t&) { return s.shutdown_once(ec); });
    }

    // One SSL_shutdown, blocking while the socket cannot take the close_notify, but not past
    // shutdown_timeout() (then timed_out).  For the synchronous websocket teardown.
    void shutdown(error_code& ec);

    // The synchronous shutdown's and teardown's deadline; nginx gives a close 3 s.
    void shutdown_timeout(std::chrono::milliseconds timeout) { shutdown_timeout_ = timeout; }
    std::chrono::milliseconds shutdown_timeout() const { return shutdown_timeout_; }

private:
    friend void teardown(beast::role_type role, tls_socket& stream, error_code& ec);

    // What the last SSL call needs before it can be retried.
    enum class want { nothing, read, write };
    // The kinds of operation, to know whose record OpenSSL holds half-sent.
    enum class operation : unsigned char { none, handshake, read, write, shutdown };
    using clock = std::chrono::steady_clock;

    // The largest plaintext of one TLS record (SSL3_RT_MAX_PLAIN_LENGTH).
    static constexpr std::size_t max_record_bytes = 16384;

    // True (and bad_descriptor) once the socket is closed: OpenSSL must not touch the number.
    bool closed(error_code& ec) const;
    // One attempt each; `ec` and `bytes` are meaningful when they return want::nothing.
    want handshake_once(error_code& ec);
    want read_once(net::mutable_buffer buffer, error_code& ec, std::size_t& bytes);
    want write_once(net::const_buffer buffer, error_code& ec, std::size_t& bytes);
    want shutdown_once(error_code& ec);
    // Makes one SSL call for `self` (returning 1 on success), unless another operation's record
    // is parked: then it only waits for the socket to take that record.
    template <class Call>
    want attempt(operation self, error_code& ec, Call call);
    // Maps an SSL call's result to the next step or to asio::ssl::stream's error codes.
    want after_call(int result, int saved_errno, error_code& ec);
    // An operation that ends without finishing its parked record (cancelled, socket closed) no
    // longer holds up the others; the connection is then past saving, and they fail.
    void abandon(operation self) {
        if (parked_ == self) parked_ = operation::none;
    }
    // The synchronous shutdown and teardown, against one deadline.
    void shutdown(clock::time_point deadline, error_code& ec);
    void close_after_peer(beast::role_type role, clock::time_point deadline, error_code& ec);
    // Blocks until the socket is ready for `next`; false (and timed_out) at the deadline.
    bool wait_until(want next, clock::time_point deadline, error_code& ec);
    // This thread's 16 KB for gathering small buffers into one record.
    static net::mutable_buffer write_scratch();

    template <class MutableBufferSequence>
    static net::mutable_buffer first_non_empty(const MutableBufferSequence& buffers) {
        for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers); ++it) {
            if (net::mutable_buffer b(*it); b.size() != 0) return b;
        }
        return {};
    }

    // A header and a body as separate buffers would otherwise become a tiny record plus a
    // large one (a WebSocket frame header is 2-14 bytes): copy up to one record's worth into
    // this thread's scratch.  Retrying after WANT_WRITE gathers the same bytes again from the
    // caller's buffers, which stay valid until the write completes, so another connection may
    // use the scratch in between (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows the new address).
    template <class ConstBufferSequence>
    static net::const_buffer gather(const ConstBufferSequence& buffers) {
        auto it = net::buffer_sequence_begin(buffers);
        const auto end = net::buffer_sequence_end(buffers);
        while (it != end && net::const_buffer(*it).size() == 0) ++it;
        if (it == end) return {};
        const net::const_buffer head(*it);
        if (head.size() >= max_record_bytes || std::next(it) == end) return head;
        const net::mutable_buffer scratch = write_scratch();
        return {scratch.data(), net::buffer_copy(scratch, buffers)};
    }

    // Runs `attempt` until it needs nothing more, waiting on the socket in between.
    template <bool ReportsBytes, class Attempt>
    struct io_op {
        tls_socket& stream;
        operation kind;
        Attempt attempt;
        bool waited = false;  // once the op has waited, completing is not inline
        bool posted = false;
        error_code result{};
        std::size_t bytes = 0;

        template <class Self>
        void operator()(Self& self, error_code wait_error = {}) {
            if (posted) return complete(self);
            if (wait_error) {  // operation_aborted when the socket was closed or cancelled
                stream.abandon(kind);
                result = wait_error;
                bytes = 0;
                return complete(self);
            }
            switch (attempt(stream, result, bytes)) {
            case want::read:
                waited = true;
                return stream.socket_.async_wait(net::socket_base::wait_read, std::move(self));
            case want::write:
                waited = true;
                return stream.socket_.async_wait(net::socket_base::wait_write, std::move(self));
            case want::nothing:
                break;
            }
            if (waited) return complete(self);
            // Done at once (data OpenSSL had already decrypted, an error, an empty buffer): the
            // handler must not run inside the initiating call.
            posted = true;
            net::post(stream.socket_.get_executor(), std::move(self));
        }

        template <class Self>
        void complete(Self& self) {
            if constexpr (ReportsBytes) {
                self.complete(result, bytes);
            } else {
                self.complete(result);
            }
        }
    };

    // Token keeps the caller's value category: an lvalue handler is copied, not moved from.
    template <bool ReportsBytes, class Token, class Attempt>
    auto start(Token& token, operation kind, Attempt attempt) {
        using signature = std::conditional_t<ReportsBytes, void(error_code, std::size_t), void(error_code)>;
        return net::async_compose<Token, signature>(io_op<ReportsBytes, Attempt>{*this, kind, std::move(attempt)}, token,
                                                    socket_);
    }

    tcp_socket socket_;
    SSL* ssl_ = nullptr;
    std::chrono::milliseconds shutdown_timeout_{3000};
    // The operation whose last SSL call left a record half-sent (it returned WANT_WRITE).  OpenSSL
    // accepts only a retry of that call until the record is out: SSL_read answering a KeyUpdate,
    // or SSL_write while SSL_read's answer is parked, would fail the connection ("bad length",
    // "bad write retry").
    operation parked_ = operation::none;
    // Set after any fatal result: OpenSSL forbids SSL_shutdown after SSL_ERROR_SSL or
    // SSL_ERROR_SYSCALL, and a connection in a state this socket cannot resume has nothing to close.
    bool failed_ = false;
};

// Closing a beast::websocket::stream<tls_socket>: close_notify, then the TCP teardown (found by
// ADL), both within the socket's shutdown_timeout().
void teardown(beast::role_type role, tls_socket& stream, error_code& ec);

namespace detail {
struct tls_teardown_op {
    tls_socket& stream;
    beast::role_type role;
    int stage = 0;
    error_code shutdown_error{};

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
        switch (stage++) {
        case 0:
            // As Beast's ssl::stream teardown does: every kind of cancellation reaches the waits.
            self.reset_cancellation_state(net::enable_total_cancellation());
            return stream.async_shutdown(std::move(self));
        case 1:
            shutdown_error = ec;
            return beast::websocket::async_teardown(role, stream.next_layer(), std::move(self));
        default:
            self.complete(shutdown_error ? shutdown_error : ec);
        }
    }
};
}  // namespace detail

template <class Handler>
void async_teardown(beast::role_type role, tls_socket& stream, Handler&& handler) {
    net::async_compose<Handler, void(error_code)>(detail::tls_teardown_op{stream, role}, handler, stream.next_layer());
}

}  // namespace voice_broker
