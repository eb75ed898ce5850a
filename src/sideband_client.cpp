#include "voice_broker/sideband_client.hpp"

#include "tls_socket.hpp"
#include "voice_broker/ascii.hpp"
#include "voice_broker/ip_network.hpp"
#include "voice_broker/net.hpp"
#include "voice_broker/realtime_call_id.hpp"
#include "upstream_url.hpp"

#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <deque>
#include <optional>

namespace voice_broker {

namespace websocket = boost::beast::websocket;

namespace {

// What the rest of the program learns about an I/O error: short, and never a secret.
std::string describe(const error_code& ec) { return ec.message(); }

class client_impl;

// One call's sideband.  Lives on the client's one I/O thread; send() and close() hop onto it.
template <bool Tls>
class connection final : public sideband_connection, public std::enable_shared_from_this<connection<Tls>> {
public:
    using stream_type = std::conditional_t<Tls, websocket::stream<tls_socket>, websocket::stream<tcp_socket>>;

    connection(std::shared_ptr<const client_impl> client, net::io_context& io, std::string call_id,
               net::any_io_executor deliver_to, sideband_handlers handlers);

    void start() {
        net::post(io_, [self = this->shared_from_this()] { self->do_resolve(); });
    }

    bool send(std::string text) override;
    void close() override {
        net::post(io_, [self = this->shared_from_this()] { self->do_close(); });
    }

private:
    void do_resolve();
    void on_resolve(error_code ec, tcp::resolver::results_type results);
    void on_connect(error_code ec, const tcp::endpoint&);
    void do_proxy_connect();
    void on_proxy_written(error_code ec, std::size_t);
    void on_proxy_answer(error_code ec, std::size_t);
    void do_tls_handshake();
    void on_tls_handshake(error_code ec);
    void do_upgrade();
    void on_upgrade(error_code ec);
    void do_read();
    void on_read(error_code ec, std::size_t bytes);
    void do_write();
    void on_write(error_code ec, std::size_t);
    void do_close();
    void on_connect_deadline(error_code ec);

    // Ends the connection and reports why, once.
    void end(sideband_end_info why);
    void fail(const std::string& what) { end({.what = sideband_end_info::kind::failed, .detail = what}); }
    void close_socket() {
        error_code ignored;
        if (ws_) beast::get_lowest_layer(*ws_).close(ignored);
        socket_.close(ignored);
        resolver_.cancel();
        deadline_.cancel();
    }

    template <class F>
    void deliver(F f) {
        net::post(deliver_to_, std::move(f));
    }

    std::shared_ptr<const client_impl> client_;
    net::io_context& io_;
    std::string call_id_;
    net::any_io_executor deliver_to_;
    std::shared_ptr<sideband_handlers> handlers_;
    tcp::resolver resolver_;
    tcp_socket socket_;
    net::steady_timer deadline_;
    std::optional<proxy_endpoint> proxy_;
    beast::flat_buffer proxy_buffer_;
    std::optional<http::response_parser<http::empty_body>> proxy_parser_;
    std::optional<http::request<http::empty_body>> proxy_request_;
    std::optional<stream_type> ws_;
    websocket::response_type upgrade_answer_;
    beast::flat_buffer read_buffer_;
    std::deque<std::string> queue_;
    std::atomic<std::size_t> queued_{0};
    std::atomic<bool> ended_{false};
    bool open_ = false;
    bool writing_ = false;
    bool closing_ = false;  // close() asked: the next end is ours
};

class client_impl final : public sideband_client, public std::enable_shared_from_this<client_impl> {
public:
    client_impl(net::io_context& io, sideband_settings settings, upstream_target target)
        : io_(io), settings_(std::move(settings)), target_(std::move(target)), tls_(ssl::context::tls_client) {}

    std::optional<std::string> init() {
        if (!target_.tls) return std::nullopt;
        SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
        tls_.set_verify_mode(ssl::verify_peer);
        error_code ec;
        if (settings_.ca_bundle.empty()) {
            tls_.set_default_verify_paths(ec);
            if (ec) return "cannot load the system's CA store: " + ec.message();
        } else {
            tls_.load_verify_file(settings_.ca_bundle, ec);
            if (ec) return "cannot load OPENAI_CA_BUNDLE " + settings_.ca_bundle + ": " + ec.message();
        }
        return std::nullopt;
    }

    std::shared_ptr<sideband_connection> open(const std::string& call_id, net::any_io_executor deliver_to,
                                              sideband_handlers handlers) override {
        if (target_.tls) {
            auto c = std::make_shared<connection<true>>(shared_from_this(), io_, call_id, std::move(deliver_to), std::move(handlers));
            c->start();
            return c;
        }
        auto c = std::make_shared<connection<false>>(shared_from_this(), io_, call_id, std::move(deliver_to), std::move(handlers));
        c->start();
        return c;
    }

    std::string endpoint() const override {
        return std::string(target_.tls ? "wss://" : "ws://") + target_.host_header() + target_.base_path + "/v1/realtime?call_id=";
    }

    const sideband_settings& settings() const { return settings_; }
    const upstream_target& target() const { return target_; }
    ssl::context& tls() const { return tls_; }

private:
    net::io_context& io_;
    sideband_settings settings_;
    upstream_target target_;
    mutable ssl::context tls_;  // OpenSSL's SSL_CTX is safe to share once set up
};

// ---- connection ----------------------------------------------------------------------------

template <bool Tls>
connection<Tls>::connection(std::shared_ptr<const client_impl> client, net::io_context& io, std::string call_id,
                            net::any_io_executor deliver_to, sideband_handlers handlers)
    : client_(std::move(client)),
      io_(io),
      call_id_(std::move(call_id)),
      deliver_to_(std::move(deliver_to)),
      handlers_(std::make_shared<sideband_handlers>(std::move(handlers))),
      resolver_(io),
      socket_(io),
      deadline_(io) {}

template <bool Tls>
bool connection<Tls>::send(std::string text) {
    if (ended_.load(std::memory_order_acquire)) return false;
    if (queued_.fetch_add(1, std::memory_order_acq_rel) >= client_->settings().send_queue_limit) {
        queued_.fetch_sub(1, std::memory_order_acq_rel);
        net::post(io_, [self = this->shared_from_this()] {
            self->fail("the send queue is full (" + std::to_string(self->client_->settings().send_queue_limit) +
                       " events): the upstream is not reading");
        });
        return false;
    }
    net::post(io_, [self = this->shared_from_this(), text = std::move(text)]() mutable {
        if (self->ended_) return;
        self->queue_.push_back(std::move(text));
        if (self->open_) self->do_write();
    });
    return true;
}

template <bool Tls>
void connection<Tls>::end(sideband_end_info why) {
    if (ended_.exchange(true, std::memory_order_acq_rel)) return;
    close_socket();
    queue_.clear();
    deliver([handlers = std::move(handlers_), why = std::move(why)]() mutable {
        if (handlers && handlers->on_end) handlers->on_end(std::move(why));
    });
}

template <bool Tls>
void connection<Tls>::do_resolve() {
    if (closing_ || ended_) return fail("closed before it connected");
    if (!is_valid_call_id(call_id_)) return fail("not a valid call id");
    const auto& target = client_->target();
    const auto& proxies = client_->settings().proxy;
    if (!proxies.bypassed(target.host)) {
        if (auto problem = proxies.problem(target.tls)) return fail(*problem);
        proxy_ = proxies.for_target(target.tls, target.host);
    }
    deadline_.expires_after(client_->settings().connect_timeout);
    deadline_.async_wait(beast::bind_front_handler(&connection::on_connect_deadline, this->shared_from_this()));
    const auto& host = proxy_ ? proxy_->host : target.host;
    const auto port = proxy_ ? std::to_string(proxy_->port) : target.port;
    resolver_.async_resolve(host, port, beast::bind_front_handler(&connection::on_resolve, this->shared_from_this()));
}

template <bool Tls>
void connection<Tls>::on_connect_deadline(error_code ec) {
    if (ec || open_ || ended_) return;
    fail("no connection within " + std::to_string(client_->settings().connect_timeout.count()) + " s");
}

template <bool Tls>
void connection<Tls>::on_resolve(error_code ec, tcp::resolver::results_type results) {
    if (ended_) return;
    if (ec) return fail(std::string("cannot resolve ") + (proxy_ ? "the proxy" : "the API host") + ": " + describe(ec));
    net::async_connect(socket_, results, beast::bind_front_handler(&connection::on_connect, this->shared_from_this()));
}

template <bool Tls>
void connection<Tls>::on_connect(error_code ec, const tcp::endpoint&) {
    if (ended_) return;
    if (ec) return fail(std::string("cannot connect to ") + (proxy_ ? "the proxy" : "the API") + ": " + describe(ec));
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    if (proxy_) return do_proxy_connect();
    do_tls_handshake();
}

template <bool Tls>
void connection<Tls>::do_proxy_connect() {
    const auto authority = client_->target().authority();
    proxy_request_.emplace(http::verb::connect, authority, 11);
    proxy_request_->set(http::field::host, authority);
    proxy_request_->set(http::field::user_agent, "voice-broker/" VOICE_BROKER_VERSION);
    if (!proxy_->authorization.empty()) proxy_request_->set(http::field::proxy_authorization, proxy_->authorization);
    http::async_write(socket_, *proxy_request_,
                      beast::bind_front_handler(&connection::on_proxy_written, this->shared_from_this()));
}

template <bool Tls>
void connection<Tls>::on_proxy_written(error_code ec, std::size_t) {
    if (ended_) return;
    proxy_request_.reset();  // it held the proxy credentials
    if (ec) return fail("the proxy did not take the CONNECT request: " + describe(ec));
    proxy_parser_.emplace();
    proxy_parser_->skip(true);  // a CONNECT answer has no body
    proxy_parser_->header_limit(8192);
    http::async_read_header(socket_, proxy_buffer_, *proxy_parser_,
                            beast::bind_front_handler(&connection::on_proxy_answer, this->shared_from_this()));
}

template <bool Tls>
void connection<Tls>::on_proxy_answer(error_code ec, std::size_t) {
    if (ended_) return;
    if (ec) return fail("no answer from the proxy: " + describe(ec));
    const auto status = proxy_parser_->get().result_int();
    proxy_parser_.reset();
    if (status < 200 || status > 299) return fail("the proxy refused the tunnel with HTTP " + std::to_string(status));
    if (proxy_buffer_.size() != 0) return fail("the proxy sent bytes after its CONNECT answer");
    proxy_buffer_ = beast::flat_buffer{};
    do_tls_handshake();
}

template <bool Tls>
void connection<Tls>::do_tls_handshake() {
    const auto& target = client_->target();
    if constexpr (Tls) {
        try {
            ws_.emplace(std::move(socket_), client_->tls());
        } catch (const std::exception& e) {
            return fail(std::string("cannot start TLS: ") + e.what());
        }
        SSL* ssl = ws_->next_layer().native_handle();
        SSL_set_connect_state(ssl);
        // SNI (never for an IP literal), and the certificate must name the host.
        if (!target.host_is_ip) SSL_set_tlsext_host_name(ssl, target.host.c_str());
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        const int named = target.host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, target.host.c_str())
                                            : X509_VERIFY_PARAM_set1_host(param, target.host.c_str(), 0);
        if (named != 1) return fail("cannot set the expected certificate name");
        ws_->next_layer().async_handshake(beast::bind_front_handler(&connection::on_tls_handshake, this->shared_from_this()));
    } else {
        ws_.emplace(std::move(socket_));
        do_upgrade();
    }
}

template <bool Tls>
void connection<Tls>::on_tls_handshake(error_code ec) {
    if (ended_) return;
    if (ec) return fail("TLS handshake failed: " + describe(ec));
    do_upgrade();
}

template <bool Tls>
void connection<Tls>::do_upgrade() {
    const auto& s = client_->settings();
    websocket::stream_base::timeout t;
    t.handshake_timeout = s.connect_timeout;  // also bounds the closing handshake
    t.idle_timeout = s.idle_timeout;
    t.keep_alive_pings = true;
    ws_->set_option(t);
    ws_->read_message_max(s.max_message_bytes);
    ws_->auto_fragment(false);
    ws_->set_option(websocket::stream_base::decorator([auth = "Bearer " + s.api_key](websocket::request_type& req) {
        req.set(http::field::authorization, auth);
        req.set(http::field::user_agent, "voice-broker/" VOICE_BROKER_VERSION);
    }));
    const auto& target = client_->target();
    ws_->async_handshake(upgrade_answer_, target.host_header(), target.base_path + "/v1/realtime?call_id=" + call_id_,
                         beast::bind_front_handler(&connection::on_upgrade, this->shared_from_this()));
}

template <bool Tls>
void connection<Tls>::on_upgrade(error_code ec) {
    if (ended_) return;
    if (ec == websocket::error::upgrade_declined) {
        return end({.what = sideband_end_info::kind::refused,
                    .http_status = static_cast<int>(upgrade_answer_.result_int()),
                    .detail = "the upgrade was answered " + std::to_string(upgrade_answer_.result_int())});
    }
    if (ec) return fail("the WebSocket upgrade failed: " + describe(ec));
    upgrade_answer_ = {};
    deadline_.cancel();
    open_ = true;
    ws_->text(true);
    deliver([handlers = handlers_] {
        if (handlers->on_open) handlers->on_open();
    });
    if (closing_) return do_close();
    do_read();
    if (!queue_.empty()) do_write();
}

template <bool Tls>
void connection<Tls>::do_read() {
    ws_->async_read(read_buffer_, beast::bind_front_handler(&connection::on_read, this->shared_from_this()));
}

template <bool Tls>
void connection<Tls>::on_read(error_code ec, std::size_t bytes) {
    if (ended_) return;
    if (ec == websocket::error::closed) {
        return end({.what = sideband_end_info::kind::closed,
                    .close_code = static_cast<int>(ws_->reason().code),
                    .detail = std::string(ws_->reason().reason.data(), ws_->reason().reason.size())});
    }
    if (ec) {
        // Dropped without a close frame (reset, EOF, the idle timeout): 1006, as a browser says.
        return end({.what = sideband_end_info::kind::closed, .close_code = closing_ ? 1000 : 1006, .detail = describe(ec)});
    }
    if (ws_->got_text()) {
        auto event = nlohmann::json::parse(static_cast<const char*>(read_buffer_.data().data()),
                                           static_cast<const char*>(read_buffer_.data().data()) + bytes, nullptr, false);
        if (!event.is_discarded() && event.is_object()) {
            deliver([handlers = handlers_, event = std::move(event)]() mutable {
                if (handlers->on_event) handlers->on_event(std::move(event));
            });
        }
    }
    read_buffer_.consume(read_buffer_.size());
    if (read_buffer_.capacity() > 64 * 1024) read_buffer_ = beast::flat_buffer{};  // a large event is not kept
    do_read();
}

template <bool Tls>
void connection<Tls>::do_write() {
    if (writing_ || queue_.empty() || closing_ || ended_) return;
    writing_ = true;
    ws_->async_write(net::buffer(queue_.front()), beast::bind_front_handler(&connection::on_write, this->shared_from_this()));
}

template <bool Tls>
void connection<Tls>::on_write(error_code ec, std::size_t) {
    writing_ = false;
    if (ended_) return;
    if (ec) return end({.what = sideband_end_info::kind::closed, .close_code = 1006, .detail = "write: " + describe(ec)});
    queue_.pop_front();
    queued_.fetch_sub(1, std::memory_order_acq_rel);
    do_write();
}

template <bool Tls>
void connection<Tls>::do_close() {
    if (ended_) return;
    closing_ = true;
    if (!open_) return fail("closed before it connected");  // cancels the pending step
    // The close frame goes out; the pending read then ends with `closed` (or the handshake
    // timeout drops it) and reports the end.
    ws_->async_close(websocket::close_code::normal, [self = this->shared_from_this()](error_code ec) {
        if (ec && !self->ended_) {
            self->end({.what = sideband_end_info::kind::closed, .close_code = 1000, .detail = "closed by us: " + describe(ec)});
        }
    });
}

}  // namespace

sideband_settings make_sideband_settings(const config& c, proxy_settings proxy) {
    sideband_settings s;
    s.base_url = c.openai.base_url;
    s.api_key = c.openai.api_key;
    s.ca_bundle = c.openai.ca_bundle;
    s.proxy = std::move(proxy);
    s.connect_timeout = std::min(c.openai.timeout, std::chrono::seconds{10});
    return s;
}

std::variant<std::shared_ptr<sideband_client>, std::string> sideband_client::create(net::io_context& io,
                                                                                  sideband_settings settings) {
    auto target = parse_base_url(settings.base_url);
    if (!target) return std::string("OPENAI_BASE_URL must be http(s)://host[:port][/path] for the sideband");
    auto client = std::make_shared<client_impl>(io, std::move(settings), std::move(*target));
    if (auto err = client->init()) return *err;
    return std::shared_ptr<sideband_client>(std::move(client));
}

}  // namespace voice_broker
