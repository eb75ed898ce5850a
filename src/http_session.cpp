// http_session: one HTTP/1.1 connection, plain or TLS.  It reads one request at a time with a
// fresh, bounded parser, hands it to the router, writes the answer, and repeats while the
// client keeps the connection alive.  It only moves bytes: every decision is the router's.
#include "voice_broker/api_response.hpp"
#include "voice_broker/logging.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/router.hpp"
#include "voice_broker/ticket.hpp"
#include "server_context.hpp"

#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

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
std::string new_request_id() {
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
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, z >>= 4) out[static_cast<std::size_t>(i)] = digits[z & 15];
    return out;
}

bool valid_request_id(std::string_view id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

template <class Derived>
class http_session : public connection {
public:
    http_session(beast::flat_buffer buffer, std::shared_ptr<server_context> ctx, connection_slot slot)
        : buffer_(std::move(buffer)), ctx_(std::move(ctx)), slot_(std::move(slot)) {}

    ~http_session() override { ctx_->registry.remove(registry_id_); }

    void begin_shutdown() override {
        net::post(derived().stream().get_executor(),
                  beast::bind_front_handler(&http_session::on_shutdown, derived().shared_from_this()));
    }

protected:
    Derived& derived() { return static_cast<Derived&>(*this); }

    void start() {
        registry_id_ = ctx_->registry.add(derived().weak_from_this());
        error_code ec;
        const auto ep = beast::get_lowest_layer(derived().stream()).socket().remote_endpoint(ec);
        peer_ = ec ? std::string("-") : ep.address().to_string();
        if (peer_.rfind("::ffff:", 0) == 0) peer_ = peer_.substr(7);
        do_read();
    }

    void do_read() {
        if (closing_ || ctx_->shutting_down.load()) return derived().do_eof();
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(ctx_->settings.limits.max_header_bytes));
        parser_->body_limit(ctx_->settings.limits.max_body_bytes);
        if (buffer_.size() == 0) {
            // Idle keep-alive: wait for the first byte of the next request with the idle timeout;
            // the whole request then has REQUEST_TIMEOUT_SECONDS.
            waiting_idle_ = true;
            beast::get_lowest_layer(derived().stream()).expires_after(ctx_->settings.limits.idle_timeout);
            derived().stream().async_read_some(buffer_.prepare(1024),
                                               beast::bind_front_handler(&http_session::on_first_bytes,
                                                                         derived().shared_from_this()));
            return;
        }
        read_request();
    }

    void on_first_bytes(error_code ec, std::size_t n) {
        waiting_idle_ = false;
        if (ec) return finish_quietly(ec, "read");
        buffer_.commit(n);
        read_request();
    }

    void read_request() {
        started_ = std::chrono::steady_clock::now();
        beast::get_lowest_layer(derived().stream()).expires_after(ctx_->settings.limits.request_timeout);
        http::async_read(derived().stream(), buffer_, *parser_,
                         beast::bind_front_handler(&http_session::on_read, derived().shared_from_this()));
    }

    void on_read(error_code ec, std::size_t) {
        if (ec == http::error::end_of_stream) return derived().do_eof();
        if (ec == http::error::body_limit) {
            return reply_and_close(api_error(413, "payload_too_large",
                                             "The request body is larger than this server accepts."));
        }
        if (ec == http::error::header_limit) {
            return reply_and_close(api_error(431, "headers_too_large", "The request headers are too large."));
        }
        if (ec && ec.category() == http::make_error_code(http::error::bad_target).category()) {
            return reply_and_close(api_error(400, "bad_request", "The request is not valid HTTP/1.1."));
        }
        if (ec) return finish_quietly(ec, "read");

        auto& msg = parser_->get();
        const auto target = std::string(msg.target());
        const auto id = identify(ctx_->settings, peer_, Derived::is_tls, msg.base());
        request_id_ = valid_request_id(msg["X-Request-Id"]) ? std::string(msg["X-Request-Id"]) : new_request_id();
        method_ = std::string(msg.method_string());
        logged_target_ = redact_query(target);
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
        if (q != std::string::npos) req.query = target.substr(q + 1);
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
        // Static files are answered right here, on this strand: dispatch runs the write at once;
        // answers from the session service arrive on its strand and are posted back.
        ctx_->routes->handle(std::move(req), [self = derived().shared_from_this()](http_response res) {
            auto executor = self->stream().get_executor();
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
        if (request_id_.empty()) request_id_ = new_request_id();
        send(std::move(res));
    }

    void send(http_response res) {
        ctx_->headers.apply(res, secure_);
        res.set_header("X-Request-Id", request_id_);
        ctx_->stats.count_request(res.status);

        if (method_ == "HEAD") res.omit_body = true;  // whoever answered, HEAD carries no body
        const bool keep = keep_alive_ && !closing_ && !ctx_->shutting_down.load();
        body_ = res.shared_body ? res.shared_body : std::make_shared<const std::string>(std::move(res.body));
        const bool no_body = res.omit_body || res.status == 304 || res.status == 204;
        // One concrete message type for every answer, kept here while it is written: the header
        // and the body then leave in a single gathered write.
        auto& msg = response_.emplace(static_cast<http::status>(res.status), version_ ? version_ : 11);
        msg.set(http::field::server, "voice-broker");
        for (auto& [name, value] : res.headers) msg.set(name, value);
        if (no_body) {
            if (res.status != 304 && res.status != 204) msg.content_length(body_->size());
        } else {
            msg.body() = beast::span<const char>(body_->data(), body_->size());
            msg.prepare_payload();
        }
        msg.keep_alive(keep);
        status_ = res.status;
        bytes_ = no_body ? 0 : body_->size();
        beast::get_lowest_layer(derived().stream()).expires_after(ctx_->settings.limits.request_timeout);
        http::async_write(derived().stream(), msg,
                          beast::bind_front_handler(&http_session::on_write, derived().shared_from_this(), keep));
    }

    void on_write(bool keep, error_code ec, std::size_t) {
        const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
        spdlog::info("{} {} {} {} {} {:.1f}ms rid={}", client_, method_, logged_target_, status_, bytes_, ms, request_id_);
        body_.reset();
        response_.reset();
        if (ec) return finish_quietly(ec, "write");
        if (!keep) return derived().do_eof();
        do_read();
    }

    void on_shutdown() {
        closing_ = true;
        // Idle keep-alive connections close now; one mid-request finishes its answer first.
        if (waiting_idle_) beast::get_lowest_layer(derived().stream()).cancel();
    }

    void finish_quietly(const error_code& ec, const char* what) { fail(ec, what, registry_id_); }

    beast::flat_buffer buffer_;
    std::shared_ptr<server_context> ctx_;
    connection_slot slot_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<const std::string> body_;
    std::optional<http::response<http::span_body<const char>>> response_;
    std::uint64_t registry_id_ = 0;
    std::string peer_, client_, method_, logged_target_, request_id_;
    bool secure_ = false, keep_alive_ = false, closing_ = false, waiting_idle_ = false;
    unsigned version_ = 11;
    unsigned status_ = 0;
    std::size_t bytes_ = 0;
    std::chrono::steady_clock::time_point started_{};
};

class plain_http_session final : public http_session<plain_http_session>,
                                 public std::enable_shared_from_this<plain_http_session> {
public:
    static constexpr bool is_tls = false;

    plain_http_session(beast::tcp_stream stream, beast::flat_buffer buffer, std::shared_ptr<server_context> ctx,
                       connection_slot slot, bool redirect)
        : http_session(std::move(buffer), std::move(ctx), std::move(slot)), stream_(std::move(stream)), redirect_(redirect) {}

    void run() { start(); }
    beast::tcp_stream& stream() { return stream_; }
    bool redirect_to_https() const { return redirect_; }

    void do_eof() {
        error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }

    void hand_over(websocket_handover handover) {
        run_websocket(std::move(stream_), std::move(handover), ctx_, std::move(slot_));
    }

private:
    beast::tcp_stream stream_;
    bool redirect_;
};

class tls_http_session final : public http_session<tls_http_session>,
                               public std::enable_shared_from_this<tls_http_session> {
public:
    static constexpr bool is_tls = true;

    tls_http_session(beast::ssl_stream<beast::tcp_stream> stream, beast::flat_buffer buffer,
                     std::shared_ptr<server_context> ctx, connection_slot slot)
        : http_session(std::move(buffer), std::move(ctx), std::move(slot)), stream_(std::move(stream)) {}

    void run() {
        beast::get_lowest_layer(stream_).expires_after(ctx_->settings.limits.tls_handshake_timeout);
        stream_.async_handshake(ssl::stream_base::server, buffer_.data(),
                                beast::bind_front_handler(&tls_http_session::on_handshake, shared_from_this()));
    }

    beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }
    bool redirect_to_https() const { return false; }

    void do_eof() {
        beast::get_lowest_layer(stream_).expires_after(ctx_->settings.limits.tls_handshake_timeout);
        stream_.async_shutdown(beast::bind_front_handler(&tls_http_session::on_shutdown_done, shared_from_this()));
    }

    void hand_over(websocket_handover handover) {
        run_websocket(std::move(stream_), std::move(handover), ctx_, std::move(slot_));
    }

private:
    void on_handshake(error_code ec, std::size_t used) {
        if (ec) return fail(ec, "tls handshake", registry_id_);
        buffer_.consume(used);
        secure_ = true;
        start();
    }

    void on_shutdown_done(error_code ec) {
        if (ec) fail(ec, "tls shutdown", registry_id_);
    }

    beast::ssl_stream<beast::tcp_stream> stream_;
};

}  // namespace

void run_plain_http(beast::tcp_stream stream, beast::flat_buffer buffer, std::shared_ptr<server_context> ctx,
                    connection_slot slot, bool redirect_to_https) {
    std::make_shared<plain_http_session>(std::move(stream), std::move(buffer), std::move(ctx), std::move(slot),
                                         redirect_to_https)
        ->run();
}

void run_tls_http(beast::ssl_stream<beast::tcp_stream> stream, beast::flat_buffer buffer,
                  std::shared_ptr<server_context> ctx, connection_slot slot) {
    std::make_shared<tls_http_session>(std::move(stream), std::move(buffer), std::move(ctx), std::move(slot))->run();
}

}  // namespace voice_broker
