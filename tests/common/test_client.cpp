#include "test_client.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <stdexcept>
#include <variant>

namespace voice_broker::testing {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

std::shared_ptr<ssl::context> client_context(const tls_options& tls) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_verify_mode(ssl::verify_none);  // test certificates are self-signed
    if (tls.max_version) SSL_CTX_set_max_proto_version(ctx->native_handle(), tls.max_version);
    if (tls.min_version) SSL_CTX_set_min_proto_version(ctx->native_handle(), tls.min_version);
    if (tls.max_version && tls.max_version < TLS1_2_VERSION) {
        SSL_CTX_set_security_level(ctx->native_handle(), 0);  // allow offering the old protocol at all
        SSL_CTX_set_cipher_list(ctx->native_handle(), "DEFAULT:@SECLEVEL=0");
    }
    return ctx;
}

// Runs the io_context until `done` or the timeout; throws on timeout.
template <class Pred>
void run_until(net::io_context& ioc, Pred done, std::chrono::milliseconds timeout, const char* what) {
    ioc.restart();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) throw std::runtime_error(std::string("timed out: ") + what);
        if (ioc.run_one_for(left) == 0 && ioc.stopped()) ioc.restart();
    }
}

response convert(http::response<http::string_body>& res) {
    response out;
    out.status = res.result_int();
    for (const auto& f : res) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto& slot = out.headers[name];
        if (!slot.empty()) slot += ", ";
        slot += std::string(f.value());
    }
    out.body = res.body();
    out.keep_alive = res.keep_alive();
    return out;
}

}  // namespace

struct http_client::impl {
    net::io_context ioc;
    std::shared_ptr<ssl::context> ctx;
    std::variant<beast::tcp_stream, beast::ssl_stream<beast::tcp_stream>> stream;
    beast::flat_buffer buffer;
    std::chrono::milliseconds timeout;
    std::uint16_t port;

    impl(std::uint16_t p, tls_options tls, std::chrono::milliseconds t)
        : ctx(client_context(tls)), stream(std::in_place_index<0>, ioc), timeout(t), port(p) {
        const tcp::endpoint ep{net::ip::make_address("127.0.0.1"), port};
        if (tls.enabled) {
            stream.emplace<1>(ioc, *ctx);
            auto& s = std::get<1>(stream);
            SSL_set_tlsext_host_name(s.native_handle(), "localhost");
            error_code ec;
            beast::get_lowest_layer(s).socket().connect(ep, ec);
            if (ec) throw std::runtime_error("connect: " + ec.message());
            bool done = false;
            s.async_handshake(ssl::stream_base::client, [&](error_code e) {
                ec = e;
                done = true;
            });
            run_until(ioc, [&] { return done; }, timeout, "tls handshake");
            if (ec) throw std::runtime_error("tls handshake: " + ec.message());
        } else {
            error_code ec;
            std::get<0>(stream).socket().connect(ep, ec);
            if (ec) throw std::runtime_error("connect: " + ec.message());
        }
    }

    template <class F>
    void with_stream(F&& f) {
        std::visit(f, stream);
    }
};

http_client::http_client(std::uint16_t port, tls_options tls, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>(port, tls, timeout)) {}
http_client::~http_client() = default;

response http_client::request(const std::string& method, const std::string& target, const header_list& headers,
                              const std::string& body) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    if (req.method() == http::verb::unknown) req.method_string(method);
    req.set(http::field::host, "127.0.0.1:" + std::to_string(impl_->port));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() || method == "POST") req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (method == "HEAD") parser.skip(true);
    error_code ec;
    bool done = false;
    impl_->with_stream([&](auto& s) {
        http::async_write(s, req, [&](error_code e, std::size_t) {
            if (e) {
                ec = e;
                done = true;
                return;
            }
            http::async_read(s, impl_->buffer, parser, [&](error_code e2, std::size_t) {
                ec = e2;
                done = true;
            });
        });
    });
    run_until(impl_->ioc, [&] { return done; }, impl_->timeout, "http request");
    if (ec) throw std::runtime_error("http " + method + " " + target + ": " + ec.message());
    auto res = parser.release();
    return convert(res);
}

void http_client::send_raw(const std::string& bytes) {
    error_code ec;
    bool done = false;
    impl_->with_stream([&](auto& s) {
        net::async_write(s, net::buffer(bytes), [&](error_code e, std::size_t) {
            ec = e;
            done = true;
        });
    });
    run_until(impl_->ioc, [&] { return done; }, impl_->timeout, "raw write");
    if (ec) throw std::runtime_error("raw write: " + ec.message());
}

std::string http_client::raw_exchange(const std::string& bytes, std::chrono::milliseconds timeout) {
    send_raw(bytes);
    std::string out;
    read_until_closed(out, timeout);  // a server that keeps the connection: what came so far
    return out;
}

bool http_client::closed_by_server(std::chrono::milliseconds timeout) {
    std::string ignored;
    return read_until_closed(ignored, timeout);
}

bool http_client::read_until_closed(std::string& out, std::chrono::milliseconds timeout) {
    auto& c = *impl_;
    bool closed = false;
    std::array<char, 4096> chunk{};
    std::function<void()> read_more;
    c.with_stream([&](auto& s) {
        read_more = [&, sp = &s] {
            sp->async_read_some(net::buffer(chunk), [&](error_code e, std::size_t n) {
                out.append(chunk.data(), n);
                if (e) {
                    closed = true;
                    return;
                }
                read_more();
            });
        };
    });
    read_more();
    try {
        run_until(c.ioc, [&] { return closed; }, timeout, "read until closed");
    } catch (const std::runtime_error&) {
        return false;
    }
    return true;
}

std::string http_client::negotiated_tls_version() const {
    if (impl_->stream.index() != 1) return "none";
    return SSL_get_version(std::get<1>(impl_->stream).native_handle());
}

response fetch(std::uint16_t port, const std::string& method, const std::string& target, const header_list& headers,
               const std::string& body, tls_options tls) {
    http_client c(port, tls);
    return c.request(method, target, headers, body);
}

struct ws_client::impl {
    net::io_context ioc;
    std::shared_ptr<ssl::context> ctx;
    std::variant<websocket::stream<beast::tcp_stream>, websocket::stream<beast::ssl_stream<beast::tcp_stream>>> ws;
    beast::flat_buffer buffer;
    bool reading = false;
    bool have_message = false;
    bool closed = false;
    error_code read_error;

    impl(tls_options tls) : ctx(client_context(tls)), ws(std::in_place_index<0>, ioc) {
        if (tls.enabled) ws.emplace<1>(ioc, *ctx);
    }
};

ws_client::ws_client(std::uint16_t port, const std::string& target, const header_list& headers, tls_options tls)
    : impl_(std::make_unique<impl>(tls)) {
    const tcp::endpoint ep{net::ip::make_address("127.0.0.1"), port};
    error_code ec;
    bool done = false;
    websocket::response_type upgrade_response;
    std::visit(
        [&](auto& ws) {
            beast::get_lowest_layer(ws).socket().connect(ep, ec);
            if (ec) throw std::runtime_error("connect: " + ec.message());
            ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
                for (const auto& [k, v] : headers) req.set(k, v);
            }));
            auto do_upgrade = [&] {
                ws.async_handshake(upgrade_response, "127.0.0.1:" + std::to_string(port), target, [&](error_code e) {
                    ec = e;
                    done = true;
                });
            };
            if constexpr (std::is_same_v<std::decay_t<decltype(ws)>,
                                         websocket::stream<beast::ssl_stream<beast::tcp_stream>>>) {
                ws.next_layer().async_handshake(ssl::stream_base::client, [&, do_upgrade](error_code e) {
                    if (e) {
                        ec = e;
                        done = true;
                        return;
                    }
                    do_upgrade();
                });
            } else {
                do_upgrade();
            }
        },
        impl_->ws);
    run_until(impl_->ioc, [&] { return done; }, 10s, "websocket handshake");
    if (ec) {
        throw std::runtime_error("websocket upgrade failed: " + ec.message() + " status " +
                                 std::to_string(upgrade_response.result_int()) + " " + upgrade_response.body());
    }
}

ws_client::~ws_client() = default;

std::optional<nlohmann::json> ws_client::next(std::chrono::milliseconds timeout) {
    if (impl_->closed) return std::nullopt;
    if (!impl_->reading) {
        impl_->reading = true;
        impl_->have_message = false;
        std::visit(
            [&](auto& ws) {
                ws.async_read(impl_->buffer, [this](error_code e, std::size_t) {
                    impl_->reading = false;
                    if (e) {
                        impl_->closed = true;
                        impl_->read_error = e;
                        return;
                    }
                    impl_->have_message = true;
                });
            },
            impl_->ws);
    }
    try {
        run_until(impl_->ioc, [&] { return !impl_->reading; }, timeout, "websocket message");
    } catch (const std::runtime_error&) {
        return std::nullopt;  // still reading; the next call continues the same read
    }
    if (!impl_->have_message) return std::nullopt;
    impl_->have_message = false;
    auto text = beast::buffers_to_string(impl_->buffer.data());
    impl_->buffer.consume(impl_->buffer.size());
    return nlohmann::json::parse(text, nullptr, false);
}

std::optional<nlohmann::json> ws_client::next_of_type(const std::string& type, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto msg = next(left);
        if (!msg) return std::nullopt;
        if (msg->is_object() && msg->value("type", "") == type) return msg;
    }
}

void ws_client::send(const std::string& text) {
    bool done = false;
    error_code ec;
    std::visit(
        [&](auto& ws) {
            ws.text(true);
            ws.async_write(net::buffer(text), [&](error_code e, std::size_t) {
                ec = e;
                done = true;
            });
        },
        impl_->ws);
    run_until(impl_->ioc, [&] { return done; }, 5s, "websocket send");
    if (ec) throw std::runtime_error("websocket send: " + ec.message());
}

void ws_client::close() {
    error_code ignored;
    std::visit([&](auto& ws) { beast::get_lowest_layer(ws).socket().close(ignored); }, impl_->ws);
    impl_->closed = true;
}

bool ws_client::is_closed() const { return impl_->closed; }

int ws_client::close_code() const {
    return std::visit([](auto& ws) { return static_cast<int>(ws.reason().code); }, impl_->ws);
}

}  // namespace voice_broker::testing
