#include "tls_socket.hpp"

#include <openssl/err.h>

#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdint>

namespace voice_broker {

namespace {

// OpenSSL's own socket BIO (what SSL_set_fd installs) sends with write(2), which raises SIGPIPE
// when the peer has gone.  The binary ignores SIGPIPE process-wide (main.cpp), but a program that
// embeds the server (the tests) may not.  This is BIO_s_socket() with only the write replaced by
// send(MSG_NOSIGNAL), as Asio's sockets do; it costs the same one small BIO per connection.
int send_without_sigpipe(BIO* bio, const char* data, int size) {
    const auto sent = ::send(static_cast<int>(BIO_get_fd(bio, nullptr)), data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
    BIO_clear_retry_flags(bio);
    if (sent < 0 && BIO_sock_should_retry(-1)) BIO_set_retry_write(bio);
    return static_cast<int>(sent);
}

const BIO_METHOD* socket_method() {
    // Made once and kept for the life of the process, like OpenSSL's built-in methods.
    static BIO_METHOD* const method = [] {
        const BIO_METHOD* base = BIO_s_socket();
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "voice_broker socket");
        if (m == nullptr || !BIO_meth_set_write(m, send_without_sigpipe) || !BIO_meth_set_read(m, BIO_meth_get_read(base)) ||
            !BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(base)) || !BIO_meth_set_create(m, BIO_meth_get_create(base)) ||
            !BIO_meth_set_destroy(m, BIO_meth_get_destroy(base))) {
            throw boost::system::system_error(static_cast<int>(ERR_get_error()), net::error::get_ssl_category(), "BIO_meth_new");
        }
        return m;
    }();
    return method;
}

// Renegotiation watch, as nginx's ngx_ssl_info_callback: a TLS <= 1.2 handshake that starts after
// the first one finished is a renegotiation, whatever the options said (a TLS 1.3 KeyUpdate or
// NewSessionTicket is not).  The state lives in the SSL object, which stays put when the
// tls_socket moves.
enum handshake_marks : std::uintptr_t { first_handshake_done = 1, renegotiation_started = 2 };

int marks_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

std::uintptr_t marks(const SSL* ssl) { return reinterpret_cast<std::uintptr_t>(SSL_get_ex_data(ssl, marks_index())); }

void watch_handshakes(const SSL* ssl, int where, int) {
    const std::uintptr_t now = marks(ssl);
    std::uintptr_t next = now;
    if ((where & SSL_CB_HANDSHAKE_START) && (now & first_handshake_done) && SSL_version(ssl) <= TLS1_2_VERSION) {
        next |= renegotiation_started;
    }
    if (where & SSL_CB_HANDSHAKE_DONE) next |= first_handshake_done;
    if (next != now) SSL_set_ex_data(const_cast<SSL*>(ssl), marks_index(), reinterpret_cast<void*>(next));
}

}  // namespace

tls_socket::tls_socket(tcp_socket socket, ssl::context& ctx) : socket_(std::move(socket)) {
    // OpenSSL needs the descriptor non-blocking.  native_non_blocking, not non_blocking: Asio's
    // own synchronous calls on the socket must still block.  First, because it throws on a closed
    // socket and nothing is allocated yet.
    socket_.native_non_blocking(true);
    const BIO_METHOD* method = socket_method();
    // The error queue is this thread's, shared by every connection on it: start from an empty
    // one, or a failure below would report an entry another connection left.
    ERR_clear_error();
    ssl_ = SSL_new(ctx.native_handle());
    BIO* bio = ssl_ ? BIO_new(method) : nullptr;
    if (bio == nullptr) {
        const error_code ec(static_cast<int>(ERR_get_error()), net::error::get_ssl_category());
        SSL_free(ssl_);
        throw boost::system::system_error(ec, "SSL_new");
    }
    BIO_set_fd(bio, socket_.native_handle(), BIO_NOCLOSE);  // the tcp_socket owns the descriptor
    SSL_set_bio(ssl_, bio, bio);                             // what SSL_set_fd does, with our BIO
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    // Renegotiation is refused by this connection itself, not only by the context (an operator's
    // openssl.cnf can turn it back on there), as nginx's ngx_ssl_create_connection does.
    SSL_set_options(ssl_, SSL_OP_NO_RENEGOTIATION);
    SSL_clear_options(ssl_, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    SSL_set_info_callback(ssl_, watch_handshakes);
    SSL_set_accept_state(ssl_);
}

tls_socket::tls_socket(tls_socket&& other) noexcept
    : socket_(std::move(other.socket_)),
      ssl_(std::exchange(other.ssl_, nullptr)),
      shutdown_timeout_(other.shutdown_timeout_),
      parked_(std::exchange(other.parked_, operation::none)),
      failed_(other.failed_) {}

tls_socket& tls_socket::operator=(tls_socket&& other) noexcept {
    if (this != &other) {
        SSL_free(ssl_);
        socket_ = std::move(other.socket_);
        ssl_ = std::exchange(other.ssl_, nullptr);
        shutdown_timeout_ = other.shutdown_timeout_;
        parked_ = std::exchange(other.parked_, operation::none);
        failed_ = other.failed_;
    }
    return *this;
}

tls_socket::~tls_socket() { SSL_free(ssl_); }  // sends nothing; the BIO leaves the descriptor open

void tls_socket::keep_buffers() { SSL_clear_mode(ssl_, SSL_MODE_RELEASE_BUFFERS); }

net::mutable_buffer tls_socket::write_scratch() {
    thread_local std::array<char, max_record_bytes> scratch;
    return net::buffer(scratch);
}

// Each SSL call starts from an empty error queue and errno: both are per thread and shared by
// every connection on it, so a stale entry would be reported against the wrong connection.
// The open check comes first because OpenSSL holds the bare descriptor number: once the socket
// is closed that number may already belong to another connection.

bool tls_socket::closed(error_code& ec) const {
    if (socket_.is_open()) return false;
    ec = net::error::bad_descriptor;
    return true;
}

template <class Call>
tls_socket::want tls_socket::attempt(operation self, error_code& ec, Call call) {
    if (closed(ec)) return want::nothing;
    if (parked_ != operation::none && parked_ != self) {
        // Another operation's record is half-sent; it goes on when the socket takes more.
        ec = {};
        return want::write;
    }
    ERR_clear_error();
    errno = 0;
    const int result = call();
    const int saved_errno = errno;
    const want next = after_call(result, saved_errno, ec);
    if (next == want::write) {
        parked_ = self;
    } else if (parked_ == self) {
        parked_ = operation::none;
    }
    return next;
}

tls_socket::want tls_socket::handshake_once(error_code& ec) {
    return attempt(operation::handshake, ec, [&] { return SSL_do_handshake(ssl_); });
}

tls_socket::want tls_socket::read_once(net::mutable_buffer buffer, error_code& ec, std::size_t& bytes) {
    bytes = 0;
    if (buffer.size() == 0 && !closed(ec)) {
        ec = {};
        return want::nothing;
    }
    return attempt(operation::read, ec, [&] { return SSL_read_ex(ssl_, buffer.data(), buffer.size(), &bytes); });
}

tls_socket::want tls_socket::write_once(net::const_buffer buffer, error_code& ec, std::size_t& bytes) {
    bytes = 0;
    if (buffer.size() == 0 && !closed(ec)) {
        ec = {};
        return want::nothing;
    }
    return attempt(operation::write, ec, [&] { return SSL_write_ex(ssl_, buffer.data(), buffer.size(), &bytes); });
}

tls_socket::want tls_socket::shutdown_once(error_code& ec) {
    // After a fatal error there is no TLS session left to close; the TCP close that follows is
    // all the peer can get.
    if (failed_ && !closed(ec)) {
        ec = {};
        return want::nothing;
    }
    // 0: our close_notify is sent; 1: the peer's had arrived too.  Either way we are done.
    return attempt(operation::shutdown, ec, [&] { return SSL_shutdown(ssl_) >= 0 ? 1 : -1; });
}

void tls_socket::shutdown(error_code& ec) { shutdown(clock::now() + shutdown_timeout_, ec); }

void tls_socket::shutdown(clock::time_point deadline, error_code& ec) {
    for (;;) {
        if (parked_ != operation::none && parked_ != operation::shutdown) {
            // A blocked thread cannot let that operation finish its record, and the close_notify
            // may only follow it.
            ec = net::error::try_again;
            return;
        }
        const want next = shutdown_once(ec);
        if (next == want::nothing || !wait_until(next, deadline, ec)) return;
    }
}

bool tls_socket::wait_until(want next, clock::time_point deadline, error_code& ec) {
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            ec = net::error::timed_out;
            return false;
        }
        pollfd ready{socket_.native_handle(), static_cast<short>(next == want::read ? POLLIN : POLLOUT), 0};
        const int n = ::poll(&ready, 1, static_cast<int>(left.count()));
        if (n > 0) return true;  // ready, or an error that the next call reports
        if (n < 0 && errno != EINTR) {
            ec = error_code(errno, boost::system::system_category());
            return false;
        }
    }
}

// Beast's TCP teardown (send FIN, read until the peer's, close) with a deadline: a client that
// never closes must not hold the thread.
void tls_socket::close_after_peer(beast::role_type role, clock::time_point deadline, error_code& ec) {
    error_code ignored;
    if (role == beast::role_type::server) socket_.shutdown(net::socket_base::shutdown_send, ignored);
    std::array<char, 2048> discard;
    while (socket_.is_open()) {
        const auto n = ::recv(socket_.native_handle(), discard.data(), discard.size(), MSG_DONTWAIT);
        if (n == 0) break;  // the peer's FIN
        if (n > 0) continue;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            ec = error_code(errno, boost::system::system_category());
            break;
        }
        if (!wait_until(want::read, deadline, ec)) break;
    }
    if (role == beast::role_type::client) socket_.shutdown(net::socket_base::shutdown_send, ignored);
    socket_.close(ignored);
}

tls_socket::want tls_socket::after_call(int result, int saved_errno, error_code& ec) {
    ec = {};
    if (marks(ssl_) & renegotiation_started) {
        // nginx drops such a connection too (ngx_ssl_handle_recv): whatever OpenSSL made of the
        // new handshake, the client asked for something this server refuses.
        failed_ = true;
        ec = error_code(static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_NO_RENEGOTIATION)), net::error::get_ssl_category());
        return want::nothing;
    }
    switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_NONE:
        return want::nothing;
    case SSL_ERROR_WANT_READ:
        return want::read;
    case SSL_ERROR_WANT_WRITE:
        return want::write;
    case SSL_ERROR_ZERO_RETURN:
        // The peer's close_notify.  With SSL_OP_IGNORE_UNEXPECTED_EOF on the context a bare TCP
        // EOF also lands here; tell the two apart as asio::ssl::stream does.
        ec = (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) ? error_code(net::error::eof) : error_code(ssl::error::stream_truncated);
        return want::nothing;
    case SSL_ERROR_SYSCALL: {
        failed_ = true;
        const unsigned long queued = ERR_get_error();
        if (queued != 0) {
            ec = error_code(static_cast<int>(queued), net::error::get_ssl_category());
        } else if (saved_errno != 0) {
            ec = error_code(saved_errno, boost::system::system_category());
        } else {
            ec = ssl::error::stream_truncated;  // OpenSSL 1.1's way of reporting EOF without close_notify
        }
        return want::nothing;
    }
    case SSL_ERROR_SSL: {
        failed_ = true;
        const unsigned long queued = ERR_get_error();
        if (ERR_GET_LIB(queued) == ERR_LIB_SSL && ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ec = ssl::error::stream_truncated;  // OpenSSL 3: the peer closed TCP without close_notify
        } else {
            ec = error_code(static_cast<int>(queued), net::error::get_ssl_category());
        }
        return want::nothing;
    }
    default:
        // A result this socket cannot resume (a callback that asked to be called again, an async
        // engine): the connection is as dead as after SSL_ERROR_SSL.
        failed_ = true;
        ec = ssl::error::unexpected_result;
        return want::nothing;
    }
}

void teardown(beast::role_type role, tls_socket& stream, error_code& ec) {
    const auto deadline = tls_socket::clock::now() + stream.shutdown_timeout();
    stream.shutdown(deadline, ec);
    // The TCP teardown runs whatever the shutdown gave; its error is reported only if the
    // shutdown had none (as Beast does for ssl::stream).
    error_code tcp_error;
    stream.close_after_peer(role, deadline, tcp_error);
    if (!ec) ec = tcp_error;
}

}  // namespace voice_broker
