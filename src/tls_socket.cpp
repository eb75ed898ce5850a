#include "tls_socket.hpp"

#include <openssl/err.h>

#include <sys/socket.h>

#include <array>
#include <cerrno>

namespace voice_broker {

namespace {

// OpenSSL's own socket BIO (what SSL_set_fd installs) sends with write(2), which raises SIGPIPE
// when the peer has gone, and nothing in this process ignores SIGPIPE.  This is BIO_s_socket()
// with only the write replaced by send(MSG_NOSIGNAL), as Asio's sockets do; it costs the same
// one small BIO per connection.
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

}  // namespace

tls_socket::tls_socket(tcp_socket socket, ssl::context& ctx) : socket_(std::move(socket)) {
    // OpenSSL needs the descriptor non-blocking.  native_non_blocking, not non_blocking: Asio's
    // own synchronous calls on the socket (Beast's sync teardown) must still block.  First,
    // because it throws on a closed socket and nothing is allocated yet.
    socket_.native_non_blocking(true);
    const BIO_METHOD* method = socket_method();
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
    SSL_set_accept_state(ssl_);
}

tls_socket::tls_socket(tls_socket&& other) noexcept
    : socket_(std::move(other.socket_)), ssl_(std::exchange(other.ssl_, nullptr)), failed_(other.failed_) {}

tls_socket& tls_socket::operator=(tls_socket&& other) noexcept {
    if (this != &other) {
        SSL_free(ssl_);
        socket_ = std::move(other.socket_);
        ssl_ = std::exchange(other.ssl_, nullptr);
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

// Each *_once starts from an empty error queue and errno: both are per thread and shared by
// every connection on it, so a stale entry would be reported against the wrong connection.
// The open check comes first because OpenSSL holds the bare descriptor number: once the socket
// is closed that number may already belong to another connection.

bool tls_socket::closed(error_code& ec) const {
    if (socket_.is_open()) return false;
    ec = net::error::bad_descriptor;
    return true;
}

tls_socket::want tls_socket::handshake_once(error_code& ec) {
    if (closed(ec)) return want::nothing;
    ERR_clear_error();
    errno = 0;
    const int result = SSL_do_handshake(ssl_);
    return after_call(result, errno, ec);
}

tls_socket::want tls_socket::read_once(net::mutable_buffer buffer, error_code& ec, std::size_t& bytes) {
    bytes = 0;
    if (closed(ec)) return want::nothing;
    if (buffer.size() == 0) {
        ec = {};
        return want::nothing;
    }
    ERR_clear_error();
    errno = 0;
    const int result = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &bytes);
    return after_call(result, errno, ec);
}

tls_socket::want tls_socket::write_once(net::const_buffer buffer, error_code& ec, std::size_t& bytes) {
    bytes = 0;
    if (closed(ec)) return want::nothing;
    if (buffer.size() == 0) {
        ec = {};
        return want::nothing;
    }
    ERR_clear_error();
    errno = 0;
    const int result = SSL_write_ex(ssl_, buffer.data(), buffer.size(), &bytes);
    return after_call(result, errno, ec);
}

tls_socket::want tls_socket::shutdown_once(error_code& ec) {
    if (closed(ec)) return want::nothing;
    // After a fatal error there is no TLS session left to close; the TCP close that follows is
    // all the peer can get.
    if (failed_) {
        ec = {};
        return want::nothing;
    }
    ERR_clear_error();
    errno = 0;
    const int result = SSL_shutdown(ssl_);
    // 0: our close_notify is sent; 1: the peer's had arrived too.  Either way we are done.
    if (result >= 0) {
        ec = {};
        return want::nothing;
    }
    return after_call(result, errno, ec);
}

void tls_socket::shutdown(error_code& ec) {
    for (;;) {
        const want next = shutdown_once(ec);
        if (next == want::nothing) return;
        socket_.wait(next == want::read ? net::socket_base::wait_read : net::socket_base::wait_write, ec);
        if (ec) return;
    }
}

tls_socket::want tls_socket::after_call(int result, int saved_errno, error_code& ec) {
    ec = {};
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
        ec = ssl::error::unexpected_result;
        return want::nothing;
    }
}

void teardown(beast::role_type role, tls_socket& stream, error_code& ec) {
    stream.shutdown(ec);
    // The TCP teardown runs whatever the shutdown gave; its error is reported only if the
    // shutdown had none (as Beast does for ssl::stream).
    error_code tcp_error;
    beast::websocket::teardown(role, stream.next_layer(), ec ? tcp_error : ec);
}

}  // namespace voice_broker
