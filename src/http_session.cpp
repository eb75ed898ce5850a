// http_session: one HTTP/1.1 connection, plain or TLS.  It reads one request at a time with a
// fresh, bounded parser, turns it into a plain http_request, and carries out what the router
// decides: write an answer, hand the request to the session service (which answers through a
// responder), or hand the connection over to a WebSocket session.  It moves bytes, arms
// deadlines and writes the access log; it decides nothing about the request itself.
#include "io_errors.hpp"
#include "session_entry_points.hpp"
#include "voice_broker/ascii.hpp"
#include "voice_broker/logging.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/parsed_head.hpp"
#include "voice_broker/request_framing.hpp"
#include "voice_broker/request_id.hpp"
#include "voice_broker/responder.hpp"
#include "voice_broker/response_head.hpp"
#include "voice_broker/router.hpp"
#include "voice_broker/session_service.hpp"

#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <sstream>

namespace voice_broker {

namespace {

// One connection's answers are written from `out_`, a buffer reused for every answer (its
// capacity stays), so a keep-alive connection allocates nothing per answer for the head.
// Under TLS a body up to this size is copied behind the head: one buffer, one TLS record.
constexpr std::size_t tls_coalesce_limit = 16 * 1024;

using request_message = http::request<http::string_body>;

// The Beast message as the plain request the router reads (header names lower-cased).
http_request to_plain_request(request_message& msg) {
    http_request req;
    req.method.assign(msg.method_string());
    req.target.assign(origin_form(msg.target()));
    const auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    req.headers.reserve(static_cast<std::size_t>(std::distance(msg.begin(), msg.end())));
    for (const auto& field : msg) req.headers.emplace_back(lower_ascii(field.name_string()), std::string(field.value()));
    req.websocket_upgrade = beast::websocket::is_upgrade(msg);
    req.body = std::move(msg.body());
    return req;
}

// Bytes of chunk framing (sizes, extensions, trailers) a request may carry beyond its body.
constexpr std::size_t framing_allowance = 16 * 1024;

read_failure classify(const error_code& ec) {
    if (ec == http::error::body_limit) return read_failure::body_too_large;
    if (ec == http::error::header_limit) return read_failure::headers_too_large;
    return read_failure::malformed;
}

template <class Derived>
class http_session : public connection {
public:
    http_session(std::shared_ptr<server_context> ctx, counted_connection count, io_executor ex)
        : ctx_(std::move(ctx)), count_(std::move(count)), timer_(ex) {}

    ~http_session() override { ctx_->registry.remove(registry_id_); }

    void begin_shutdown() override {
        net::post(timer_.get_executor(), [weak = derived().weak_from_this()] {
            if (auto self = weak.lock()) self->on_shutdown();
        });
    }

protected:
    Derived& derived() { return static_cast<Derived&>(*this); }

    void start() {
        registry_id_ = ctx_->registry.add(derived().weak_from_this());
        error_code ec;
        const auto ep = beast::get_lowest_layer(derived().stream()).remote_endpoint(ec);
        peer_ = ec ? std::string("-") : ep.address().to_string();
        if (peer_.rfind("::ffff:", 0) == 0) peer_ = peer_.substr(7);
        secure_ = Derived::is_tls;  // until the router knows better (a trusted proxy's X-Forwarded-Proto)
        next_request();
    }

    // ---- deadlines ----------------------------------------------------------------------------
    // One timer per connection, armed lazily: moving the deadline is a store, and the timer,
    // when it fires early, waits again for the stored deadline.  A keep-alive request thus costs
    // no timer cancellation.  The handler holds the session weakly: only I/O keeps it alive.
    void set_deadline(std::chrono::steady_clock::duration d) {
        deadline_ = std::chrono::steady_clock::now() + d;
        if (!timer_waiting_ || deadline_ < armed_at_) arm_timer();  // earlier than the wait: re-arm
    }

    // While the service (and the upstream, bounded by its own timeout) makes the answer, the
    // connection waits for it, but not forever: past the upstream's timeout and a margin, the
    // answer is not coming and the connection is closed.  send() sets the deadline for writing it.
    void suspend_deadline() { set_deadline(ctx_->settings.openai.timeout + answer_margin); }
    static constexpr std::chrono::seconds answer_margin{5};

    void arm_timer() {
        timer_waiting_ = true;
        armed_at_ = deadline_;
        timer_.expires_at(armed_at_);  // cancels a wait for a later time, if any
        timer_.async_wait([weak = derived().weak_from_this(), at = armed_at_](error_code ec) {
            if (auto self = weak.lock()) self->on_timer(ec, at);
        });
    }

    void on_timer(error_code ec, std::chrono::steady_clock::time_point at) {
        if (at != armed_at_) return;  // a wait that arm_timer replaced
        timer_waiting_ = false;
        if (ec) return;
        if (std::chrono::steady_clock::now() < deadline_) return arm_timer();
        // Too slow (or idle too long): closing the socket ends whatever operation is pending.
        error_code ignored;
        beast::get_lowest_layer(derived().stream()).close(ignored);
    }

    // ---- reading --------------------------------------------------------------------------------
    void next_request() {
        if (closing_ || ctx_->shutting_down.load()) return derived().do_eof();
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(ctx_->settings.limits.max_header_bytes));
        parser_->body_limit(ctx_->settings.limits.max_body_bytes);
        parser_->eager(true);
        request_bytes_ = 0;
        head_checked_ = false;
        if (buffer_.size() == 0) {
            // Idle keep-alive: wait for the first byte of the next request with the idle timeout;
            // the whole request then has REQUEST_TIMEOUT_SECONDS.
            waiting_idle_ = true;
            set_deadline(ctx_->settings.limits.idle_timeout);
            return read_more();
        }
        begin_request();
        parse();
    }

    void begin_request() {
        started_ = std::chrono::steady_clock::now();
        set_deadline(ctx_->settings.limits.request_timeout);
    }

    void read_more() {
        const auto room = buffer_.capacity() - buffer_.size();
        derived().stream().async_read_some(buffer_.prepare(room >= 1024 ? room : 4096),
                                           [self = derived().shared_from_this()](error_code ec, std::size_t n) {
                                               self->on_bytes(ec, n);
                                           });
    }

    void on_bytes(error_code ec, std::size_t n) {
        const bool was_idle = std::exchange(waiting_idle_, false);
        if (ec) {
            // A peer that closes between requests just leaves; mid-request it is worth a line.
            if (was_idle && (ec == net::error::eof || ec == net::ssl::error::stream_truncated)) return derived().do_eof();
            return log_io_error(ec, "read", registry_id_);
        }
        buffer_.commit(n);
        if (was_idle) begin_request();
        parse();
    }

    // Feeds what has arrived to the parser; the whole message is then handled at once.  (Beast's
    // parser does the work; reading it here instead of through http::async_read saves a posted
    // completion per request when the request arrived in one piece, the usual case.)
    //
    // The limits count the whole request, whatever the reads it came in: the parser consumes the
    // header fields it has completed, so its own limit would start again on every read.
    void parse() {
        error_code ec;
        const auto& limits = ctx_->settings.limits;
        while (buffer_.size() > 0 && !parser_->is_done()) {
            const auto used = parser_->put(buffer_.data(), ec);
            buffer_.consume(used);
            request_bytes_ += used;
            if (ec == http::error::need_more) {
                ec = {};
                break;
            }
            if (ec) break;
            if (parser_->is_header_done() && !head_checked_) {
                head_checked_ = true;
                if (const auto problem = framing_problem(head_facts(*parser_))) {
                    return reply_and_close(router::read_failure_answer(read_failure::malformed, *problem));
                }
            }
        }
        if (ec) return reply_and_close(router::read_failure_answer(classify(ec)));
        const auto held = request_bytes_ + buffer_.size();
        if (!parser_->is_header_done() && held > limits.max_header_bytes) {
            return reply_and_close(router::read_failure_answer(read_failure::headers_too_large));
        }
        if (held > limits.max_header_bytes + limits.max_body_bytes + framing_allowance) {
            return reply_and_close(router::read_failure_answer(read_failure::body_too_large));
        }
        if (!parser_->is_done()) return read_more();
        on_request();
    }

    // ---- carrying out the router's decision ---------------------------------------------------
    void on_request() {
        auto& msg = parser_->get();
        keep_alive_ = msg.keep_alive();
        version_ = msg.version();
        auto req = to_plain_request(msg);
        req.peer_address = peer_;
        req.over_tls = Derived::is_tls;
        req.plain_on_tls_port = derived().plain_on_tls_port();
        method_ = req.method;
        logged_target_ = redact_query(req.target);
        auto decision = ctx_->routes->route(req);
        client_ = req.client_address;
        secure_ = req.secure;
        request_id_ = req.request_id;
        head_only_ = decision.head_only;
        switch (decision.what) {
        case route_decision::kind::respond:
            if (decision.close) keep_alive_ = false;
            return send(std::move(decision.response));
        case route_decision::kind::session_api:
            suspend_deadline();
            return ctx_->service->handle(std::move(req), make_responder());
        case route_decision::kind::admin_api:
            suspend_deadline();
            return ctx_->service->handle_admin(std::move(req), make_responder());
        case route_decision::kind::live_channel:
            return hand_over(std::move(decision.ticket), false);
        case route_decision::kind::admin_channel:
            return hand_over(std::move(decision.login_id), true);
        }
    }

    // Answers from the service arrive on its thread: they are brought back to this one.
    responder make_responder() {
        return responder([self = derived().shared_from_this()](http_response res) {
            auto executor = self->timer_.get_executor();
            net::dispatch(executor, [self = std::move(self), res = std::move(res)]() mutable { self->send(std::move(res)); });
        });
    }

    // `who`: the visitor's ticket, or (`admin`) the console's login id.
    void hand_over(std::string who, bool admin) {
        ctx_->counters.count_request(101);
        spdlog::info("{} {} {} 101 - - {} rid={}", client_, method_, logged_target_, secure_ ? "wss" : "ws", request_id_);
        timer_.cancel();  // the WebSocket keeps its own timers from here on
        websocket_handover handover{parser_->release(), std::move(who), client_, request_id_, {}, admin};
        if (buffer_.size() > 0) {
            // Frames sent right behind the upgrade request: the WebSocket reads them after its
            // handshake, from the request's bytes followed by them.
            std::ostringstream raw;
            raw << handover.upgrade;
            handover.raw_bytes = raw.str();
            handover.raw_bytes.append(static_cast<const char*>(buffer_.data().data()), buffer_.size());
            buffer_.consume(buffer_.size());
        }
        derived().hand_over(std::move(handover));
    }

    void reply_and_close(http_response res) {
        keep_alive_ = false;
        if (method_.empty()) method_ = "-";
        if (logged_target_.empty()) logged_target_ = "-";
        if (client_.empty()) client_ = peer_;
        if (request_id_.empty()) new_request_id(request_id_);
        send(std::move(res));
    }

    // ---- writing --------------------------------------------------------------------------------
    void send(http_response res) {
        ctx_->counters.count_request(res.status);
        if (head_only_) res.omit_body = true;
        const bool keep = keep_alive_ && !closing_ && !ctx_->shutting_down.load();
        body_ = res.shared_body ? res.shared_body : std::make_shared<const std::string>(std::move(res.body));
        const bool no_body = res.omit_body || res.status == 304 || res.status == 204;

        out_.clear();
        write_response_head(out_, res, body_->size(), {ctx_->headers.lines_for(res, secure_), request_id_, keep, version_ ? version_ : 11});
        status_ = res.status;
        bytes_ = no_body ? 0 : body_->size();
        std::array<net::const_buffer, 2> buffers{net::buffer(out_), net::const_buffer{}};
        if (bytes_ > 0) {
            if (Derived::is_tls && bytes_ <= tls_coalesce_limit) {
                out_.append(*body_);
                buffers[0] = net::buffer(out_);
            } else {
                buffers[1] = net::buffer(*body_);
            }
        }
        set_deadline(ctx_->settings.limits.request_timeout);  // to send it (no timer work unless it was suspended)
        net::async_write(derived().stream(), buffers,
                         [self = derived().shared_from_this(), keep](error_code ec, std::size_t) { self->on_write(keep, ec); });
    }

    void on_write(bool keep, error_code ec) {
        if (spdlog::should_log(spdlog::level::info)) {
            const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
            if (ec) {  // never delivered: not logged as its status
                spdlog::info("{} {} {} {}-undelivered {} {:.1f}ms rid={} ({})", client_, method_, logged_target_, status_, bytes_,
                             ms, request_id_, ec.message());
            } else {
                spdlog::info("{} {} {} {} {} {:.1f}ms rid={}", client_, method_, logged_target_, status_, bytes_, ms, request_id_);
            }
        }
        body_.reset();
        if (ec) return log_io_error(ec, "write", registry_id_);
        if (!keep) return derived().do_eof();
        next_request();
    }

    void on_shutdown() {
        closing_ = true;
        // Idle keep-alive connections close now; one mid-request finishes its answer first.
        if (waiting_idle_) {
            error_code ignored;
            beast::get_lowest_layer(derived().stream()).cancel(ignored);
        }
    }

    beast::flat_buffer buffer_;
    std::shared_ptr<server_context> ctx_;
    counted_connection count_;
    net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>, io_executor> timer_;
    std::chrono::steady_clock::time_point deadline_{}, armed_at_{};
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<const std::string> body_;
    std::string out_;
    std::uint64_t registry_id_ = 0;
    std::string peer_, client_, method_, logged_target_, request_id_;
    bool secure_ = false, keep_alive_ = false, closing_ = false, waiting_idle_ = false, head_only_ = false;
    bool timer_waiting_ = false;
    unsigned version_ = 11;
    unsigned status_ = 0;
    std::size_t bytes_ = 0;
    std::size_t request_bytes_ = 0;  // consumed by the parser for the current request
    bool head_checked_ = false;
    std::chrono::steady_clock::time_point started_{};
};

class plain_http_session final : public http_session<plain_http_session>,
                                 public std::enable_shared_from_this<plain_http_session> {
public:
    static constexpr bool is_tls = false;

    plain_http_session(tcp_socket socket, std::shared_ptr<server_context> ctx, counted_connection count, bool plain_on_tls_port)
        : http_session(std::move(ctx), std::move(count), socket.get_executor()),
          socket_(std::move(socket)),
          plain_on_tls_port_(plain_on_tls_port) {}

    void run() { start(); }
    tcp_socket& stream() { return socket_; }
    bool plain_on_tls_port() const { return plain_on_tls_port_; }

    void do_eof() {
        timer_.cancel();
        error_code ec;
        socket_.shutdown(tcp::socket::shutdown_send, ec);
    }

    void hand_over(websocket_handover handover) {
        run_websocket(std::move(socket_), std::move(handover), ctx_, std::move(count_));
    }

private:
    tcp_socket socket_;
    bool plain_on_tls_port_;
};

class tls_http_session final : public http_session<tls_http_session>,
                               public std::enable_shared_from_this<tls_http_session> {
public:
    static constexpr bool is_tls = true;

    tls_http_session(tls_socket stream, std::shared_ptr<server_context> ctx, counted_connection count)
        : http_session(std::move(ctx), std::move(count), stream.get_executor()),
          stream_(std::move(stream)) {
        // A busy keep-alive connection keeps OpenSSL's record buffers instead of freeing and
        // reallocating 17 KB per write; the WebSocket, mostly idle, sets the mode again.
        stream_.keep_buffers();
    }

    void run() {
        set_deadline(ctx_->settings.limits.tls_handshake_timeout);
        stream_.async_handshake([self = shared_from_this()](error_code ec) { self->on_handshake(ec); });
    }

    tls_socket& stream() { return stream_; }
    bool plain_on_tls_port() const { return false; }

    void do_eof() {
        set_deadline(ctx_->settings.limits.tls_handshake_timeout);
        stream_.async_shutdown([self = shared_from_this()](error_code ec) { self->on_shutdown_done(ec); });
    }

    void hand_over(websocket_handover handover) {
        run_websocket(std::move(stream_), std::move(handover), ctx_, std::move(count_));
    }

private:
    void on_handshake(error_code ec) {
        if (ec) return log_io_error(ec, "tls handshake", registry_id_);
        start();
    }

    void on_shutdown_done(error_code ec) {
        timer_.cancel();
        if (ec) log_io_error(ec, "tls shutdown", registry_id_);
    }

    tls_socket stream_;
};

}  // namespace

void run_plain_http(tcp_socket socket, std::shared_ptr<server_context> ctx, counted_connection count, bool plain_on_tls_port) {
    std::make_shared<plain_http_session>(std::move(socket), std::move(ctx), std::move(count), plain_on_tls_port)->run();
}

void run_tls_http(tls_socket stream, std::shared_ptr<server_context> ctx, counted_connection count) {
    std::make_shared<tls_http_session>(std::move(stream), std::move(ctx), std::move(count))->run();
}

}  // namespace voice_broker
