#include "raw_connection.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <stdexcept>

namespace voice_broker::testing {

namespace {
using steady = std::chrono::steady_clock;

int millis_until(steady::time_point deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}
}  // namespace

raw_connection::raw_connection(std::uint16_t port, options opts) : timeout_(opts.timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    if (opts.receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &opts.receive_buffer, sizeof opts.receive_buffer);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // each send() leaves as its own segment
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd_);
        throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    if (!opts.tls) return;
    ctx_ = SSL_CTX_new(TLS_client_method());
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");  // test certificates are self-signed: not verified
    const auto deadline = steady::now() + timeout_;
    for (;;) {
        ERR_clear_error();
        const int r = SSL_connect(ssl_);
        if (r == 1) return;
        const int e = SSL_get_error(ssl_, r);
        if ((e == SSL_ERROR_WANT_READ && wait_for(POLLIN, deadline)) || (e == SSL_ERROR_WANT_WRITE && wait_for(POLLOUT, deadline))) {
            continue;
        }
        SSL_free(ssl_);
        SSL_CTX_free(ctx_);
        ::close(fd_);
        throw std::runtime_error("TLS handshake failed");
    }
}

raw_connection::~raw_connection() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
}

bool raw_connection::wait_for(short events, steady::time_point deadline) {
    for (;;) {
        pollfd p{fd_, events, 0};
        const int n = ::poll(&p, 1, millis_until(deadline));
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) return false;
    }
}

bool raw_connection::send(std::string_view bytes) {
    const auto deadline = steady::now() + timeout_;
    while (!bytes.empty()) {
        if (ssl_) {
            ERR_clear_error();
            std::size_t written = 0;
            const int r = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &written);
            if (r == 1) {
                bytes.remove_prefix(written);
                continue;
            }
            const int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_WANT_WRITE && wait_for(POLLOUT, deadline)) continue;
            if (e == SSL_ERROR_WANT_READ && wait_for(POLLIN, deadline)) continue;
            return false;
        }
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_for(POLLOUT, deadline)) continue;
        if (n < 0 && errno == EINTR) continue;
        return false;
    }
    return true;
}

bool raw_connection::answer_within(std::chrono::milliseconds wait) {
    if (peer_closed_) return true;
    const auto before = received_.size();
    receive_some(steady::now() + wait);
    return peer_closed_ || received_.size() > before;
}

bool raw_connection::receive_some(steady::time_point deadline) {
    char buf[16384];
    for (;;) {
        if (ssl_) {
            ERR_clear_error();
            std::size_t n = 0;
            const int r = SSL_read_ex(ssl_, buf, sizeof buf, &n);
            if (r == 1) {
                received_.append(buf, n);
                return true;
            }
            const int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_WANT_READ) {
                if (!wait_for(POLLIN, deadline)) return false;
                continue;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                if (!wait_for(POLLOUT, deadline)) return false;
                continue;
            }
            peer_closed_ = true;
            return true;
        }
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            received_.append(buf, static_cast<std::size_t>(n));
            return true;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(POLLIN, deadline)) return false;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        peer_closed_ = true;  // EOF or reset
        return true;
    }
}

bool raw_connection::receive_until(std::string_view needle, std::chrono::milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    while (received_.find(needle) == std::string::npos) {
        if (peer_closed_ || !receive_some(deadline)) return received_.find(needle) != std::string::npos;
    }
    return true;
}

bool raw_connection::receive_until_closed(std::chrono::milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    while (!peer_closed_) {
        if (!receive_some(deadline)) return false;
    }
    return true;
}

std::size_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace voice_broker::testing
