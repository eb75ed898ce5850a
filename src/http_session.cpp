// http_session: one HTTP/1.1 connection, plain or TLS.  It reads one request at a time with a
// fresh, bounded parser, hands it to the router, writes the answer, and repeats while the
// client keeps the connection alive.  It only moves bytes: every decision is the router's.
#include "voice_broker/api_response.hpp"
#include "voice_broker/logging.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/response_head.hpp"
#include "voice_broker/router.hpp"
#include "voice_broker/ticket.hpp"
#include "server_context.hpp"

#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace voice_broker {

namespace {

// Who the client really is: behind a trusted proxy, the right-most untrusted X-Forwarded-For
// address and the proxy's X-Forwarded-Proto; otherwise the socket's own peer.
struct client_identity {
    std::string address;
    bool secure;
};

bool trusted(const config& c, const std::string& address) {
    return std::any_of(c.trusted_proxies.begin(), c.trusted_proxies.end(),
                       [&](const ip_network& n) { return n.contains(address); });
}

client_identity identify(const config& c, const std::string& peer, bool tls, const http::fields& headers) {
    client_identity id{peer, tls};
    if (!trusted(c, peer)) return id;
    const auto xff = headers["X-Forwarded-For"];
    if (!xff.empty()) {
        std::string_view rest = xff;
        while (!rest.empty()) {
            const auto comma = rest.rfind(',');
            auto item = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
            while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
            while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
            if (!parse_ip(item)) break;
            id.address = std::string(item);
            if (!trusted(c, id.address)) break;
        }
    }
    const auto proto = headers["X-Forwarded-Proto"];
    if (proto == "https") id.secure = true;
    else if (proto == "http") id.secure = tls;
    return id;
}

// Request ids only correlate log lines: unique, not secret.  A per-thread splitmix64 stream,
// seeded once from OpenSSL, costs nanoseconds instead of a call into the CSPRNG per request.
void new_request_id(std::string& out) {
    thread_local std::uint64_t state = [] {
        std::uint64_t seed = 0;
        const auto hex = random_hex(8);
        for (char c : hex) seed = seed * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        return seed;
    }();
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    static constexpr char digits[] = "0123456789abcdef";
    out.assign(16, '0');
    for (int i = 15; i >= 0; --i, z >>= 4) out[static_cast<std::size_t>(i)] = digits[z & 15];
}

bool valid_request_id(std::string_view id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

// One connection's answers are written from `out_`, a buffer reused for every answer (its
// capacity stays), so a keep-alive connection allocates nothing per answer for the head.
// Under TLS a body up to this size is copied behind the head: one buffer, one TLS record.
constexpr std::size_t tls_coalesce_limit = 16 * 1024;

template <class Derived>
class http_session : public connection {
public:
    http_session(std::shared_ptr<server_context> ctx, connection_slot slot, io_executor ex)
        : ctx_(std::move(ctx)), slot_(std::move(slot)), timer_(ex) {}

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

    // While the answer is being made (the service, the upstream: bounded by their own timeouts),
    // the connection has no deadline; send() sets one for writing it.
    void suspend_deadline() { deadline_ = std::chrono::steady_clock::now() + std::chrono::hours{24}; }

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
            if ((ec == net::error::eof || ec == net::ssl::error::stream_truncated) && was_idle) return derived().do_eof();
            return finish_quietly(ec, "read");
        }
        buffer_.commit(n);
        if (was_idle) begin_request();
        parse();
    }

    // Feeds what has arrived to the parser; the whole message is then handled at once.  (Beast's
    // parser does the work; reading it here instead of through http::async_read saves a posted
    // completion per request when the request arrived in one piece, the usual case.)
    void parse() {
        error_code ec;
        while (buffer_.size() > 0 && !parser_->is_done()) {
            const auto used = parser_->put(buffer_.data(), ec);
            buffer_.consume(used);
            if (ec == http::error::need_more) {
                ec = {};
                break;
            }
            if (ec) break;
        }
        if (ec) return on_parse_error(ec);
        if (!parser_->is_done()) return read_more();
        on_request();
    }

    void on_parse_error(error_code ec) {
        if (ec == http::error::body_limit) {
            return reply_and_close(api_error(413, "payload_too_large",
                                             "The request body is larger than this server accepts."));
        }
        if (ec == http::error::header_limit) {
            return reply_and_close(api_error(431, "headers_too_large", "The request headers are too large."));
        }
        return reply_and_close(api_error(400, "bad_request", "The request is not valid HTTP/1.1."));
    }

    void on_request() {
        auto& msg = parser_->get();
        const std::string_view target = msg.target();
        const auto id = identify(ctx_->settings, peer_, Derived::is_tls, msg.base());
        if (const auto given = msg["X-Request-Id"]; valid_request_id(given)) request_id_.assign(given);
        else new_request_id(request_id_);
        method_.assign(msg.method_string());
        logged_target_ = redact_query(std::string(target));
        client_ = id.address;
        secure_ = id.secure;
        keep_alive_ = msg.keep_alive();
        version_ = msg.version();

        if (redirect_only()) return reply_and_close(https_redirect(msg));

        if (beast::websocket::is_upgrade(msg)) return upgrade(id);

        http_request req;
        req.method = method_;
        req.target = target;
        const auto q = target.find('?');
        req.path = target.substr(0, q);
        if (q != std::string_view::npos) req.query = target.substr(q + 1);
        req.headers.reserve(static_cast<std::size_t>(std::distance(msg.begin(), msg.end())));
        for (const auto& field : msg) {
            std::string name(field.name_string());
            std::transform(name.begin(), name.end(), name.begin(), ::tolower);
            req.headers.emplace_back(std::move(name), std::string(field.value()));
        }
        req.body = std::move(msg.body());
        req.client_address = client_;
        req.secure = secure_;
        req.request_id = request_id_;
        if (req.target.empty() || req.target.front() != '/') {
            return reply_and_close(api_error(400, "bad_target", "The request target must be an absolute path."));
        }
        suspend_deadline();
        // Static files are answered right here, on this connection's thread: dispatch runs the
        // write at once; answers from the session service arrive on its thread and are posted.
        ctx_->routes->handle(std::move(req), [self = derived().shared_from_this()](http_response res) {
            auto executor = self->timer_.get_executor();
            net::dispatch(executor, [self = std::move(self), res = std::move(res)]() mutable { self->send(std::move(res)); });
        });
    }

    void upgrade(const client_identity& id) {
        auto& msg = parser_->get();
        const auto target = std::string(msg.target());
        const auto path = target.substr(0, target.find('?'));
        if (path != live_channel_path) {
            return reply_and_close(api_error(404, "not_found", "WebSocket is only served at /api/session/ws."));
        }
        // Refuse cross-site pages (the ticket cookie alone must not open someone's channel).
        const auto origin = msg[http::field::origin];
        if (!origin.empty()) {
            const auto host = msg[http::field::host];
            const auto scheme_end = origin.find("://");
            const auto origin_host = scheme_end == std::string_view::npos ? origin : origin.substr(scheme_end + 3);
            const auto forwarded_host = trusted(ctx_->settings, peer_) ? msg["X-Forwarded-Host"] : beast::string_view{};
            if (origin_host != host && origin_host != forwarded_host) {
                return reply_and_close(api_error(403, "bad_origin", "This page's origin may not open the live channel."));
            }
        }
        http_request view;
        view.target = target;
        view.query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
        for (const auto& field : msg) {
            std::string name(field.name_string());
            std::transform(name.begin(), name.end(), name.begin(), ::tolower);
            if (name == "cookie" || name == "x-session-ticket") view.headers.emplace_back(name, std::string(field.value()));
        }
        auto ticket = view.query_param("ticket");
        if (!ticket || ticket->empty()) {
            if (auto h = view.header("x-session-ticket"); !h.empty()) ticket = std::string(h);
            else ticket = view.cookie("vb_ticket");
        }
        if (!ticket || ticket->empty()) {
            return reply_and_close(api_error(400, "missing_ticket", "Open the live channel with ?ticket=... after joining."));
        }
        ctx_->stats.count_request(101);
        spdlog::info("{} {} {} 101 - - {} rid={}", client_, method_, logged_target_, id.secure ? "wss" : "ws", request_id_);
        // The WebSocket keeps its own timers from here on.
        timer_.cancel();
        derived().hand_over(websocket_handover{parser_->release(), std::move(*ticket), client_, request_id_});
    }

    bool redirect_only() const { return derived_const().redirect_to_https(); }
    const Derived& derived_const() const { return static_cast<const Derived&>(*this); }

    http_response https_redirect(const http::request<http::string_body>& msg) {
        std::string host(msg[http::field::host]);
        if (host.empty()) host = "localhost";
        if (host.front() == '[') {
            if (const auto close = host.find(']'); close != std::string::npos) host = host.substr(0, close + 1);
        } else if (const auto colon = host.find(':'); colon != std::string::npos) {
            host = host.substr(0, colon);
        }
        const auto port = ctx_->public_port;
        const auto location = "https://" + host + (port == 443 || port == 0 ? "" : ":" + std::to_string(port)) +
                              std::string(msg.target());
        auto res = api_error(308, "use_https", "This server only speaks HTTPS: " + location);
        res.set_header("Location", location);
        return res;
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
        ctx_->stats.count_request(res.status);
        if (method_ == "HEAD") res.omit_body = true;  // whoever answered, HEAD carries no body
        const bool keep = keep_alive_ && !closing_ && !ctx_->shutting_down.load();
        body_ = res.shared_body ? res.shared_body : std::make_shared<const std::string>(std::move(res.body));
        const bool no_body = res.omit_body || res.status == 304 || res.status == 204;

        out_.clear();
        write_response_head(out_, res, body_->size(),
                            {ctx_->headers.lines(secure_), request_id_, keep, version_ ? version_ : 11});
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
            spdlog::info("{} {} {} {} {} {:.1f}ms rid={}", client_, method_, logged_target_, status_, bytes_, ms, request_id_);
        }
        body_.reset();
        if (ec) return finish_quietly(ec, "write");
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

    void finish_quietly(const error_code& ec, const char* what) { fail(ec, what, registry_id_); }

    beast::flat_buffer buffer_;
    std::shared_ptr<server_context> ctx_;
    connection_slot slot_;
    net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>, io_executor> timer_;
    std::chrono::steady_clock::time_point deadline_{}, armed_at_{};
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<const std::string> body_;
    std::string out_;
    std::uint64_t registry_id_ = 0;
    std::string peer_, client_, method_, logged_target_, request_id_;
    bool secure_ = false, keep_alive_ = false, closing_ = false, waiting_idle_ = false;
    bool timer_waiting_ = false;
    unsigned version_ = 11;
    unsigned status_ = 0;
    std::size_t bytes_ = 0;
    std::chrono::steady_clock::time_point started_{};
};

class plain_http_session final : public http_session<plain_http_session>,
                                 public std::enable_shared_from_this<plain_http_session> {
public:
    static constexpr bool is_tls = false;

    plain_http_session(tcp_socket socket, std::shared_ptr<server_context> ctx, connection_slot slot, bool redirect)
        : http_session(std::move(ctx), std::move(slot), socket.get_executor()),
          socket_(std::move(socket)),
          redirect_(redirect) {}

    void run() { start(); }
    tcp_socket& stream() { return socket_; }
    bool redirect_to_https() const { return redirect_; }

    void do_eof() {
        timer_.cancel();
        error_code ec;
        socket_.shutdown(tcp::socket::shutdown_send, ec);
    }

    void hand_over(websocket_handover handover) {
        run_websocket(std::move(socket_), std::move(handover), ctx_, std::move(slot_));
    }

private:
    tcp_socket socket_;
    bool redirect_;
};

class tls_http_session final : public http_session<tls_http_session>,
                               public std::enable_shared_from_this<tls_http_session> {
public:
    static constexpr bool is_tls = true;

    tls_http_session(tls_stream stream, std::shared_ptr<server_context> ctx, connection_slot slot)
        : http_session(std::move(ctx), std::move(slot), stream.get_executor()),
          stream_(std::move(stream)) {
        // A busy keep-alive connection keeps OpenSSL's record buffers instead of freeing and
        // reallocating 17 KB per write; the WebSocket, mostly idle, sets the mode again.
        stream_.keep_buffers();
    }

    void run() {
        set_deadline(ctx_->settings.limits.tls_handshake_timeout);
        stream_.async_handshake([self = shared_from_this()](error_code ec) { self->on_handshake(ec); });
    }

    tls_stream& stream() { return stream_; }
    bool redirect_to_https() const { return false; }

    void do_eof() {
        set_deadline(ctx_->settings.limits.tls_handshake_timeout);
        stream_.async_shutdown([self = shared_from_this()](error_code ec) { self->on_shutdown_done(ec); });
    }

    void hand_over(websocket_handover handover) {
        run_websocket(std::move(stream_), std::move(handover), ctx_, std::move(slot_));
    }

private:
    void on_handshake(error_code ec) {
        if (ec) return fail(ec, "tls handshake", registry_id_);
        secure_ = true;
        start();
    }

    void on_shutdown_done(error_code ec) {
        timer_.cancel();
        if (ec) fail(ec, "tls shutdown", registry_id_);
    }

    tls_stream stream_;
};

}  // namespace

void run_plain_http(tcp_socket socket, std::shared_ptr<server_context> ctx, connection_slot slot, bool redirect_to_https) {
    std::make_shared<plain_http_session>(std::move(socket), std::move(ctx), std::move(slot), redirect_to_https)->run();
}

void run_tls_http(tls_stream stream, std::shared_ptr<server_context> ctx, connection_slot slot) {
    std::make_shared<tls_http_session>(std::move(stream), std::move(ctx), std::move(slot))->run();
}

}  // namespace voice_broker
