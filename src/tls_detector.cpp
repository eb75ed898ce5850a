#include "tls_detector.hpp"

#include "io_errors.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <cerrno>

namespace voice_broker {

namespace {

class tls_detector : public std::enable_shared_from_this<tls_detector> {
public:
    tls_detector(tcp_socket s, std::shared_ptr<ssl::context> t, std::shared_ptr<server_context> c, counted_connection count)
        : socket_(std::move(s)), tls_(std::move(t)), ctx_(std::move(c)), count_(std::move(count)), timer_(socket_.get_executor()) {}

    void run() {
        timer_.expires_after(ctx_->settings.limits.tls_handshake_timeout);
        timer_.async_wait([weak = weak_from_this()](error_code ec) {
            auto self = weak.lock();
            if (ec || !self) return;
            error_code ignored;
            self->socket_.close(ignored);  // said nothing in time: the pending wait ends
        });
        wait();
    }

private:
    void wait() {
        socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) { self->on_readable(ec); });
    }

    void on_readable(error_code ec) {
        if (ec) return log_io_error(ec, "detect", 0);
        unsigned char first = 0;
        const auto n = ::recv(socket_.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return wait();
        if (n <= 0) return;  // closed before saying anything
        timer_.cancel();
        if (first != 0x16) return run_plain_http(std::move(socket_), ctx_, std::move(count_), true);
        // Each SSL object holds a reference to its SSL_CTX, so a certificate reload cannot pull the
        // context from under a live stream.
        try {
            run_tls_http(tls_socket(std::move(socket_), *tls_), ctx_, std::move(count_));
        } catch (const boost::system::system_error& e) {  // OpenSSL could not make the connection object
            spdlog::warn("tls: dropping a connection: {}", e.what());
        }
    }

    tcp_socket socket_;
    std::shared_ptr<ssl::context> tls_;
    std::shared_ptr<server_context> ctx_;
    counted_connection count_;
    net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>, io_executor> timer_;
};

}  // namespace

void detect_tls(tcp_socket socket, std::shared_ptr<ssl::context> tls, std::shared_ptr<server_context> ctx,
                counted_connection count) {
    std::make_shared<tls_detector>(std::move(socket), std::move(tls), std::move(ctx), std::move(count))->run();
}

}  // namespace voice_broker
