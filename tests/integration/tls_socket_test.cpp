// tls_socket against a real OpenSSL peer (asio::ssl::stream as the client): echo over TLS 1.2
// and 1.3, every way a connection ends, Beast HTTP and WebSocket on top, and the heap an idle
// connection holds.  Both sides run as coroutines on one io_context in the test thread, so
// nothing races and every exchange is bounded by run()'s deadline.
#include "tls_socket.hpp"

#include "voice_broker/certificate.hpp"
#include "voice_broker/tls_context.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <gtest/gtest.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();  // <sanitizer/allocator_interface.h> is not installed
#endif

#include <cerrno>
#include <cstring>
#include <future>
#include <iostream>
#include <optional>

using namespace voice_broker;
using namespace std::chrono_literals;
namespace websocket = beast::websocket;

namespace {

template <class T>
using task = net::awaitable<T, io_executor>;
constexpr net::use_awaitable_t<io_executor> use_awaitable;
constexpr auto no_throw = net::as_tuple(use_awaitable);  // yields (error_code, ...) instead of throwing
using client_stream = ssl::stream<tcp_socket>;

const pem_pair& certificate() {
    static const pem_pair pem = make_self_signed_certificate({"127.0.0.1"});
    return pem;
}

std::string pattern(std::size_t size) {
    std::string data(size, '\0');
    for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 7 % 251);
    return data;
}

template <class T>
bool is_ready(const std::future<T>& f) {
    return f.wait_for(0s) == std::future_status::ready;
}

class tls_socket_test : public ::testing::Test {
protected:
    tls_socket_test() {
        client_ctx_.add_certificate_authority(net::buffer(certificate().certificate));
        client_ctx_.set_verify_mode(ssl::verify_peer);
    }

    void pin_client_version(int version) {
        SSL_CTX_set_min_proto_version(client_ctx_.native_handle(), version);
        SSL_CTX_set_max_proto_version(client_ctx_.native_handle(), version);
    }

    // Runs one connection: `serve` gets the accepted socket as a tls_socket (not yet handshaken),
    // `connect` the client's connected TCP socket.  Returns both results; throws what either
    // side threw, or when the two have not finished within 10 s.
    template <class ServeFn, class ConnectFn>
    auto run(ServeFn serve, ConnectFn connect) {
        using server_result = typename std::invoke_result_t<ServeFn, tls_socket>::value_type;
        using client_result = typename std::invoke_result_t<ConnectFn, tcp_socket>::value_type;
        auto server = net::co_spawn(
            io_,
            [&]() -> task<server_result> {
                auto socket = co_await acceptor_.async_accept(use_awaitable);
                co_return co_await serve(tls_socket(std::move(socket), *server_ctx_));
            },
            net::use_future);
        auto client = net::co_spawn(
            io_,
            [&]() -> task<client_result> {
                tcp_socket socket(io_, tcp::v4());
                // Before connect, so the window is small from the start.
                if (client_receive_buffer_ != 0) socket.set_option(net::socket_base::receive_buffer_size(client_receive_buffer_));
                co_await socket.async_connect(acceptor_.local_endpoint(), use_awaitable);
                co_return co_await connect(std::move(socket));
            },
            net::use_future);
        run_until([&] { return is_ready(server) && is_ready(client); });
        if (!is_ready(server) || !is_ready(client)) throw std::runtime_error("the exchange did not finish within 10 s");
        return std::pair{server.get(), client.get()};
    }

    // Runs handlers until `done` or 10 s; then leaves the io_context ready for the next run.
    template <class Predicate>
    void run_until(Predicate done) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done() && !io_.stopped() && std::chrono::steady_clock::now() < deadline) io_.run_one_until(deadline);
        io_.restart();
    }

    int client_receive_buffer_ = 0;  // bytes; 0 leaves the kernel's autotuning
    net::io_context io_;
    std::shared_ptr<ssl::context> server_ctx_ = make_server_tls_context(certificate().certificate, certificate().private_key);
    ssl::context client_ctx_{ssl::context::tls_client};
    net::basic_socket_acceptor<tcp, io_executor> acceptor_{io_, {net::ip::make_address("127.0.0.1"), 0}};
};

task<void> client_handshake(client_stream& c) { co_await c.async_handshake(ssl::stream_base::client, use_awaitable); }

// The server writes "ready" after its handshake, and the client reads it: that also drains the
// TLS 1.3 session tickets, so a later close() sends FIN, not the RST of a close with unread data.
task<void> server_says_ready(tls_socket& s) {
    co_await s.async_handshake(use_awaitable);
    co_await net::async_write(s, net::buffer("ready", 5), use_awaitable);
}
task<void> client_hears_ready(client_stream& c) {
    co_await client_handshake(c);
    char ready[5];
    co_await net::async_read(c, net::buffer(ready), use_awaitable);
}

TEST_F(tls_socket_test, echoes_small_and_large_payloads_over_tls_1_2_and_1_3) {
    client_receive_buffer_ = 8192;
    const std::string hello = "hello", large = pattern(1 << 20);
    for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        SCOPED_TRACE(version);
        pin_client_version(version);
        auto [negotiated, echoed] = run(
            [](tls_socket s) -> task<std::string> {
                // Kernel buffers on both ends far below 1 MB: the echo meets WANT_WRITE many times.
                s.next_layer().set_option(net::socket_base::send_buffer_size(8192));
                co_await s.async_handshake(use_awaitable);
                const std::array<std::size_t, 2> sizes{5, 1 << 20};
                for (const std::size_t size : sizes) {
                    std::string data(size, '\0');
                    co_await net::async_read(s, net::buffer(data), use_awaitable);
                    co_await net::async_write(s, net::buffer(data), use_awaitable);
                }
                co_return SSL_get_version(s.native_handle());
            },
            [&](tcp_socket socket) -> task<std::string> {
                client_stream c(std::move(socket), client_ctx_);
                co_await client_handshake(c);
                std::string echoed;
                const std::array<const std::string*, 2> payloads{&hello, &large};
                for (const std::string* sent : payloads) {
                    co_await net::async_write(c, net::buffer(*sent), use_awaitable);
                    std::string back(sent->size(), '\0');
                    co_await net::async_read(c, net::buffer(back), use_awaitable);
                    echoed += back;
                }
                co_return echoed;
            });
        EXPECT_EQ(negotiated, version == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3");
        EXPECT_TRUE(echoed == "hello" + large) << "echo differs; " << echoed.size() << " bytes came back";
    }
}

TEST_F(tls_socket_test, gathers_a_buffer_sequence_into_one_record) {
    const std::string big(20000, 'x');
    auto [written, first_record] = run(
        [&](tls_socket s) -> task<std::vector<std::size_t>> {
            co_await s.async_handshake(use_awaitable);
            const std::array<net::const_buffer, 3> small{net::buffer("ab", 2), net::buffer("cd", 2), net::buffer("ef", 2)};
            const std::array<net::const_buffer, 2> header_and_body{net::buffer("hh", 2), net::buffer(big)};
            std::vector<std::size_t> written;
            written.push_back(co_await s.async_write_some(small, use_awaitable));
            written.push_back(co_await s.async_write_some(header_and_body, use_awaitable));
            written.push_back(co_await s.async_write_some(net::buffer(big), use_awaitable));
            co_return written;
        },
        [&](tcp_socket socket) -> task<std::string> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_handshake(c);
            // SSL_read returns at most one record, so the first read shows how the first write went out.
            std::string first(64, '\0');
            first.resize(co_await c.async_read_some(net::buffer(first), use_awaitable));
            std::string rest(2 * 16384, '\0');
            co_await net::async_read(c, net::buffer(rest), use_awaitable);
            EXPECT_EQ(rest.substr(0, 3), "hhx");
            co_return first;
        });
    EXPECT_EQ(written, (std::vector<std::size_t>{6, 16384, 16384}));
    EXPECT_EQ(first_record, "abcdef");
}

TEST_F(tls_socket_test, close_notify_from_the_client_reads_as_eof) {
    auto [server, client_shutdown] = run(
        [](tls_socket s) -> task<std::pair<error_code, error_code>> {
            co_await s.async_handshake(use_awaitable);
            char byte;
            auto [read_error, n] = co_await s.async_read_some(net::buffer(&byte, 1), no_throw);
            auto [shutdown_error] = co_await s.async_shutdown(no_throw);
            co_return std::pair{read_error, shutdown_error};
        },
        [&](tcp_socket socket) -> task<error_code> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_handshake(c);
            // asio's shutdown sends close_notify, then waits for the server's answering one.
            auto [ec] = co_await c.async_shutdown(no_throw);
            co_return ec;
        });
    EXPECT_EQ(server.first, net::error::eof);
    EXPECT_FALSE(server.second) << server.second.message();
    EXPECT_FALSE(client_shutdown) << client_shutdown.message();
}

TEST_F(tls_socket_test, tcp_close_without_close_notify_is_truncated_and_reset_is_reset) {
    for (const bool reset : {false, true}) {
        auto [read_error, unused] = run(
            [](tls_socket s) -> task<error_code> {
                co_await server_says_ready(s);
                char byte;
                auto [ec, n] = co_await s.async_read_some(net::buffer(&byte, 1), no_throw);
                co_return ec;
            },
            [&](tcp_socket socket) -> task<int> {
                client_stream c(std::move(socket), client_ctx_);
                co_await client_hears_ready(c);
                if (reset) c.next_layer().set_option(net::socket_base::linger(true, 0));  // close sends RST
                c.next_layer().close();
                co_return 0;
            });
        if (reset) {
            EXPECT_EQ(read_error, net::error::connection_reset) << read_error.message();
        } else {
            EXPECT_EQ(read_error, ssl::error::stream_truncated) << read_error.message();
        }
    }
}

// OpenSSL's own socket BIO would write(2) here and the process would die of SIGPIPE.
TEST_F(tls_socket_test, writing_after_the_peer_closed_fails_without_sigpipe) {
    auto [write_error, unused] = run(
        [](tls_socket s) -> task<error_code> {
            co_await server_says_ready(s);
            co_await s.next_layer().async_wait(tcp::socket::wait_read, use_awaitable);  // the client's FIN
            const std::string chunk(1024, 'x');
            for (int i = 0; i < 1000; ++i) {
                auto [ec, n] = co_await s.async_write_some(net::buffer(chunk), no_throw);
                if (ec) co_return ec;  // the first write draws an RST, a later one meets EPIPE
            }
            co_return error_code{};
        },
        [&](tcp_socket socket) -> task<int> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_hears_ready(c);
            c.next_layer().close();
            co_return 0;
        });
    EXPECT_TRUE(write_error == net::error::broken_pipe || write_error == net::error::connection_reset) << write_error.message();
}

TEST_F(tls_socket_test, garbage_instead_of_a_client_hello_fails_the_handshake) {
    // An HTTP request on the TLS port, and a handshake record whose body is not a ClientHello.
    const std::array<std::string, 2> garbages{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", std::string("\x16\x03\x01\x00\x08junkjunk", 13)};
    for (const std::string& garbage : garbages) {
        auto [server, unused] = run(
            [](tls_socket s) -> task<std::pair<error_code, error_code>> {
                auto [handshake_error] = co_await s.async_handshake(no_throw);
                auto [shutdown_error] = co_await s.async_shutdown(no_throw);  // nothing to close: no-op
                co_return std::pair{handshake_error, shutdown_error};
            },
            [&](tcp_socket socket) -> task<int> {
                co_await net::async_write(socket, net::buffer(garbage), use_awaitable);
                char reply[256];
                for (;;) {
                    auto [ec, n] = co_await socket.async_read_some(net::buffer(reply), no_throw);
                    if (ec) co_return 0;  // the server closed (an alert may come first)
                }
            });
        EXPECT_EQ(&server.first.category(), &net::error::get_ssl_category()) << server.first.message();
        EXPECT_FALSE(server.second) << server.second.message();
    }
}

TEST_F(tls_socket_test, cancel_and_close_abort_a_pending_read) {
    auto [errors, unused] = run(
        [&](tls_socket s) -> task<std::vector<error_code>> {
            co_await s.async_handshake(use_awaitable);
            char byte;
            std::vector<error_code> errors;
            // Each posted action runs once the read below is waiting: the client never sends.
            net::post(s.get_executor(), [&] { s.next_layer().cancel(); });
            errors.push_back(std::get<0>(co_await s.async_read_some(net::buffer(&byte, 1), no_throw)));
            net::cancellation_signal signal;
            net::post(s.get_executor(), [&] { signal.emit(net::cancellation_type::terminal); });
            errors.push_back(std::get<0>(co_await s.async_read_some(net::buffer(&byte, 1), net::bind_cancellation_slot(signal.slot(), no_throw))));
            const auto descriptor = s.next_layer().native_handle();
            net::post(s.get_executor(), [&] { s.next_layer().close(); });
            errors.push_back(std::get<0>(co_await s.async_read_some(net::buffer(&byte, 1), no_throw)));
            // OpenSSL still holds the old descriptor number, and the next connection gets that
            // number: a write must fail rather than reach that connection's peer.
            tcp_socket newcomer(s.get_executor());
            newcomer.connect(acceptor_.local_endpoint());  // completes in the kernel's backlog
            EXPECT_EQ(newcomer.native_handle(), descriptor) << "the reuse this checks did not happen";
            errors.push_back(std::get<0>(co_await s.async_write_some(net::buffer("x", 1), no_throw)));
            co_return errors;
        },
        [&](tcp_socket socket) -> task<int> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_handshake(c);
            char byte;
            co_await c.async_read_some(net::buffer(&byte, 1), no_throw);  // until the server closes
            co_return 0;
        });
    const error_code aborted = net::error::operation_aborted;
    EXPECT_EQ(errors, (std::vector<error_code>{aborted, aborted, aborted, net::error::bad_descriptor}));
}

TEST_F(tls_socket_test, a_read_stays_pending_while_a_write_runs) {
    client_receive_buffer_ = 8192;
    const std::string big = pattern(1 << 20);
    auto [server, client_got_all] = run(
        [&](tls_socket s) -> task<std::tuple<error_code, std::string, error_code, std::size_t>> {
            s.next_layer().set_option(net::socket_base::send_buffer_size(8192));
            co_await s.async_handshake(use_awaitable);
            // The read starts first and can only finish after the client has read the whole write.
            std::string in(16, '\0');
            auto [order, read_error, read, write_error, written] =
                co_await net::experimental::make_parallel_group(s.async_read_some(net::buffer(in), net::deferred),
                                                               net::async_write(s, net::buffer(big), net::deferred))
                    .async_wait(net::experimental::wait_for_all(), use_awaitable);
            EXPECT_EQ(order[0], 1u) << "the write should finish first";
            co_return std::tuple{read_error, in.substr(0, read), write_error, written};
        },
        [&](tcp_socket socket) -> task<bool> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_handshake(c);
            std::string back(big.size(), '\0');
            co_await net::async_read(c, net::buffer(back), use_awaitable);
            co_await net::async_write(c, net::buffer("ping", 4), use_awaitable);
            co_return back == big;
        });
    const auto& [read_error, read, write_error, written] = server;
    EXPECT_FALSE(read_error) << read_error.message();
    EXPECT_EQ(read, "ping");
    EXPECT_FALSE(write_error) << write_error.message();
    EXPECT_EQ(written, big.size());
    EXPECT_TRUE(client_got_all);
}

TEST_F(tls_socket_test, completes_never_inline_and_on_the_handlers_executor) {
    struct outcome {
        bool read_inline = true, write_inline = true, read_in_strand = false;
        std::size_t pending_before = 0, read = 0;
    };
    auto [result, unused] = run(
        [](tls_socket s) -> task<outcome> {
            co_await s.async_handshake(use_awaitable);
            char first;
            co_await s.async_read_some(net::buffer(&first, 1), use_awaitable);
            outcome out;
            out.pending_before = static_cast<std::size_t>(SSL_pending(s.native_handle()));  // already decrypted
            auto strand = net::make_strand(s.get_executor());
            net::steady_timer both_done(s.get_executor(), net::steady_timer::time_point::max());
            int completed = 0;
            char rest[16];
            s.async_read_some(net::buffer(rest), net::bind_executor(strand, [&](error_code, std::size_t n) {
                                  out.read = n;
                                  out.read_in_strand = strand.running_in_this_thread();
                                  if (++completed == 2) both_done.cancel();
                              }));
            out.read_inline = completed != 0;
            const int before_write = completed;
            s.async_write_some(net::const_buffer(), [&](error_code, std::size_t) {
                if (++completed == 2) both_done.cancel();
            });
            out.write_inline = completed != before_write;
            co_await both_done.async_wait(no_throw);
            co_return out;
        },
        [&](tcp_socket socket) -> task<int> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_handshake(c);
            co_await net::async_write(c, net::buffer("hello", 5), use_awaitable);  // one record
            char byte;
            co_await c.async_read_some(net::buffer(&byte, 1), no_throw);  // until the server closes
            co_return 0;
        });
    EXPECT_EQ(result.pending_before, 4u) << "the second read must be one OpenSSL can answer at once";
    EXPECT_FALSE(result.read_inline);
    EXPECT_FALSE(result.write_inline);
    EXPECT_EQ(result.read, 4u);
    EXPECT_TRUE(result.read_in_strand);
}

TEST_F(tls_socket_test, carries_beast_http_on_a_keep_alive_connection) {
    auto [targets, bodies] = run(
        [](tls_socket s) -> task<std::string> {
            co_await s.async_handshake(use_awaitable);
            s.keep_buffers();
            beast::flat_buffer buffer;
            std::string targets;
            const std::array<char, 2> fills{'a', 'b'};
            for (const char fill : fills) {
                http::request<http::string_body> request;
                co_await http::async_read(s, buffer, request, use_awaitable);
                targets += std::string(request.target()) + ' ';
                http::response<http::string_body> response{http::status::ok, 11};
                response.body() = std::string(100000, fill);  // several records
                response.keep_alive(true);
                response.prepare_payload();
                co_await http::async_write(s, response, use_awaitable);
            }
            co_await s.async_shutdown(use_awaitable);
            co_return targets;
        },
        [&](tcp_socket socket) -> task<std::string> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_handshake(c);
            beast::flat_buffer buffer;
            std::string bodies;
            const std::array<const char*, 2> targets{"/first", "/second"};
            for (const char* target : targets) {
                http::request<http::empty_body> request{http::verb::get, target, 11};
                request.set(http::field::host, "127.0.0.1");
                co_await http::async_write(c, request, use_awaitable);
                http::response<http::string_body> response;
                co_await http::async_read(c, buffer, response, use_awaitable);
                bodies += std::to_string(response.body().size()) + response.body().substr(0, 1) + ' ';
            }
            http::response<http::string_body> none;
            auto [ec, n] = co_await http::async_read(c, buffer, none, no_throw);
            bodies += ec == http::error::end_of_stream ? "end" : ec.message();  // the server's close_notify
            co_return bodies;
        });
    EXPECT_EQ(targets, "/first /second ");
    EXPECT_EQ(bodies, "100000a 100000b end");
}

TEST_F(tls_socket_test, carries_a_websocket_that_the_client_closes) {
    auto [server_read, echoed] = run(
        [](tls_socket s) -> task<error_code> {
            websocket::stream<tls_socket> ws(std::move(s));
            co_await ws.next_layer().async_handshake(use_awaitable);
            co_await ws.async_accept(use_awaitable);
            beast::flat_buffer buffer;
            co_await ws.async_read(buffer, use_awaitable);
            co_await ws.async_write(buffer.data(), use_awaitable);
            auto [ec, n] = co_await ws.async_read(buffer, no_throw);
            co_return ec;
        },
        [&](tcp_socket socket) -> task<std::string> {
            websocket::stream<client_stream> ws(std::move(socket), client_ctx_);
            co_await client_handshake(ws.next_layer());
            co_await ws.async_handshake("127.0.0.1", "/", use_awaitable);
            co_await ws.async_write(net::buffer(std::string("hello")), use_awaitable);
            beast::flat_buffer buffer;
            co_await ws.async_read(buffer, use_awaitable);
            co_await ws.async_close(websocket::close_code::normal, use_awaitable);
            co_return beast::buffers_to_string(buffer.data());
        });
    EXPECT_EQ(echoed, "hello");
    EXPECT_EQ(server_read, websocket::error::closed) << server_read.message();
}

TEST_F(tls_socket_test, carries_a_websocket_that_the_server_pings_and_closes) {
    auto [server, client] = run(
        [](tls_socket s) -> task<std::pair<std::string, error_code>> {
            websocket::stream<tls_socket> ws(std::move(s));
            std::string heard;
            ws.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
                if (kind == websocket::frame_type::pong) heard += "pong:" + std::string(payload) + ' ';
            });
            co_await ws.next_layer().async_handshake(use_awaitable);
            co_await ws.async_accept(use_awaitable);
            co_await ws.async_ping("keep-alive", use_awaitable);
            beast::flat_buffer buffer;
            co_await ws.async_read(buffer, use_awaitable);
            co_await ws.async_write(buffer.data(), use_awaitable);
            buffer.consume(buffer.size());
            // The client answered the ping before its echo read completed, so the pong comes
            // before its next message.
            co_await ws.async_read(buffer, use_awaitable);
            heard += beast::buffers_to_string(buffer.data());
            auto [ec] = co_await ws.async_close(websocket::close_code::going_away, no_throw);
            co_return std::pair{heard, ec};
        },
        [&](tcp_socket socket) -> task<std::pair<std::string, error_code>> {
            websocket::stream<client_stream> ws(std::move(socket), client_ctx_);
            std::string heard;
            ws.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
                if (kind == websocket::frame_type::ping) heard += "ping:" + std::string(payload) + ' ';
            });
            co_await client_handshake(ws.next_layer());
            co_await ws.async_handshake("127.0.0.1", "/", use_awaitable);
            co_await ws.async_write(net::buffer(std::string("hello")), use_awaitable);
            beast::flat_buffer buffer;
            co_await ws.async_read(buffer, use_awaitable);  // answers the ping on the way
            co_await ws.async_write(net::buffer(std::string("bye")), use_awaitable);
            auto [ec, n] = co_await ws.async_read(buffer, no_throw);
            co_return std::pair{heard + "reason:" + std::to_string(ws.reason().code), ec};
        });
    EXPECT_EQ(server.first, "pong:keep-alive bye");
    EXPECT_FALSE(server.second) << server.second.message();
    EXPECT_EQ(client.first, "ping:keep-alive reason:1001");
    EXPECT_EQ(client.second, websocket::error::closed) << client.second.message();
}

// The synchronous overload (Beast's sync WebSocket close calls it; tls_socket has no sync reads,
// so it is called directly).  The client half-closes first, so the TCP teardown's blocking read
// finds the EOF already there.
TEST_F(tls_socket_test, synchronous_teardown_sends_close_notify) {
    auto [teardown_error, client_read] = run(
        [](tls_socket s) -> task<error_code> {
            co_await server_says_ready(s);
            co_await s.next_layer().async_wait(tcp::socket::wait_read, use_awaitable);  // the client's FIN
            error_code ec;
            teardown(beast::role_type::server, s, ec);
            co_return ec;
        },
        [&](tcp_socket socket) -> task<error_code> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_hears_ready(c);
            c.next_layer().shutdown(net::socket_base::shutdown_send);
            char byte;
            auto [ec, n] = co_await c.async_read_some(net::buffer(&byte, 1), no_throw);
            co_return ec;
        });
    EXPECT_FALSE(teardown_error) << teardown_error.message();
    EXPECT_EQ(client_read, net::error::eof) << "close_notify reads as eof: " << client_read.message();
}

TEST_F(tls_socket_test, moved_from_socket_is_safe_to_use_and_destroy) {
    auto [server, echoed] = run(
        [](tls_socket s) -> task<std::pair<error_code, std::string>> {
            tls_socket moved(std::move(s));
            EXPECT_EQ(s.native_handle(), nullptr);
            EXPECT_FALSE(s.next_layer().is_open());
            char byte;
            auto [moved_from_read, n] = co_await s.async_read_some(net::buffer(&byte, 1), no_throw);
            s = std::move(moved);  // back into the moved-from object; `moved` is destroyed moved-from
            co_await s.async_handshake(use_awaitable);
            std::string data(4, '\0');
            co_await net::async_read(s, net::buffer(data), use_awaitable);
            co_await net::async_write(s, net::buffer(data), use_awaitable);
            co_return std::pair{moved_from_read, data};
        },
        [&](tcp_socket socket) -> task<std::string> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_handshake(c);
            co_await net::async_write(c, net::buffer("four", 4), use_awaitable);
            std::string back(4, '\0');
            co_await net::async_read(c, net::buffer(back), use_awaitable);
            co_return back;
        });
    EXPECT_EQ(server.first, net::error::bad_descriptor);
    EXPECT_EQ(server.second, "four");
    EXPECT_EQ(echoed, "four");
}

// ---- hardening (issue 15) ------------------------------------------------------------------------

// One side tells the other that something happened; waiting after the fact returns at once.
class event {
public:
    explicit event(net::io_context& io) : timer_(io, net::steady_timer::time_point::max()) {}
    void fire() {
        fired_ = true;
        timer_.cancel();
    }
    task<void> wait() {
        if (!fired_) co_await timer_.async_wait(no_throw);
    }

private:
    bool fired_ = false;
    net::steady_timer timer_;
};

// The client asks for a TLS 1.2 renegotiation after the first exchange, then sends "after".
// Returns the client's renegotiation error.
task<error_code> client_renegotiates(client_stream& c) {
    co_await client_hears_ready(c);
    SSL_renegotiate(c.native_handle());
    auto [ec] = co_await c.async_handshake(ssl::stream_base::client, no_throw);
    if (!ec) co_await net::async_write(c, net::buffer("after", 5), no_throw);
    c.next_layer().close();
    co_return ec;
}

// What the server reads after "ready": (error, text).
task<std::pair<error_code, std::string>> server_reads_after_ready(tls_socket& s) {
    co_await server_says_ready(s);
    std::string in(16, '\0');
    auto [ec, n] = co_await s.async_read_some(net::buffer(in), no_throw);
    co_return std::pair{ec, in.substr(0, n)};
}

// An operator's openssl.cnf can turn renegotiation back on for every context
// (Options = -NoRenegotiation, ClientRenegotiation): each connection refuses it on its own, as
// nginx does with SSL_set_options(SSL_OP_NO_RENEGOTIATION).
TEST_F(tls_socket_test, refuses_client_renegotiation_even_when_the_context_allows_it) {
    SSL_CTX_clear_options(server_ctx_->native_handle(), SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_options(server_ctx_->native_handle(), SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    pin_client_version(TLS1_2_VERSION);
    auto [server, renegotiation_error] = run(
        [](tls_socket s) -> task<std::pair<error_code, std::string>> { co_return co_await server_reads_after_ready(s); },
        [&](tcp_socket socket) -> task<error_code> {
            client_stream c(std::move(socket), client_ctx_);
            co_return co_await client_renegotiates(c);
        });
    EXPECT_TRUE(renegotiation_error) << "the client's renegotiation must be refused";
    EXPECT_NE(server.second, "after") << "the connection went on after a renegotiation";
}

// If a renegotiation gets past the options anyway (a TLS <= 1.2 handshake starting after the
// first one finished), the info callback sees it and the connection ends, as in nginx's
// ngx_ssl_info_callback / ngx_ssl_handle_recv.
TEST_F(tls_socket_test, drops_the_connection_when_a_renegotiation_starts_anyway) {
    SSL_CTX_set_options(server_ctx_->native_handle(), SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    pin_client_version(TLS1_2_VERSION);
    auto [server, renegotiation_error] = run(
        [](tls_socket s) -> task<std::pair<error_code, std::string>> {
            // The first line of defence gone: the options allow it on this connection.
            SSL_clear_options(s.native_handle(), SSL_OP_NO_RENEGOTIATION);
            SSL_set_options(s.native_handle(), SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
            co_return co_await server_reads_after_ready(s);
        },
        [&](tcp_socket socket) -> task<error_code> {
            client_stream c(std::move(socket), client_ctx_);
            co_return co_await client_renegotiates(c);
        });
    EXPECT_EQ(server.first, error_code(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_NO_RENEGOTIATION), net::error::get_ssl_category()))
        << server.first.message() << ", read: '" << server.second << "'";
    EXPECT_TRUE(renegotiation_error);
}

// Fills the kernel's buffers between the two ends with bytes the client never reads.  Raw bytes,
// not TLS records: only their volume matters, and OpenSSL is then left with nothing pending.
// Bytes keep moving into the client's receive buffer until its window closes, so it fills
// again until a round after a 200 ms pause takes not one more byte.
void fill_send_path(tcp_socket& socket) {
    const std::string filler(65536, 'x');
    const int fd = socket.native_handle();
    for (std::size_t added = 1; added != 0;) {
        added = 0;
        for (const std::size_t chunk : {std::size_t{65536}, std::size_t{1024}, std::size_t{1}}) {
            for (ssize_t n; (n = ::send(fd, filler.data(), chunk, MSG_DONTWAIT | MSG_NOSIGNAL)) > 0;) added += static_cast<std::size_t>(n);
            ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
        }
        pollfd writable{fd, POLLOUT, 0};
        ::poll(&writable, 1, 200);
    }
}

// A handshaken server socket whose client reads nothing and never closes.  The blocking calls
// under test then run on another thread; if one has not returned after `patience`, the client
// is closed so that the test ends anyway (and fails).
class stuck_client_test : public tls_socket_test {
protected:
    void connect_and_fill() {
        client_receive_buffer_ = 4096;
        run(
            [&](tls_socket s) -> task<int> {
                s.next_layer().set_option(net::socket_base::send_buffer_size(4096));
                co_await server_says_ready(s);
                server_.emplace(std::move(s));
                co_return 0;
            },
            [&](tcp_socket socket) -> task<int> {
                client_.emplace(std::move(socket), client_ctx_);
                co_await client_hears_ready(*client_);
                co_return 0;
            });
        fill_send_path(server_->next_layer());
    }

    template <class Call>
    std::pair<error_code, std::chrono::steady_clock::duration> time_blocking(Call call, std::chrono::seconds patience = 10s) {
        const auto started = std::chrono::steady_clock::now();
        auto done = std::async(std::launch::async, [&] {
            error_code ec;
            call(*server_, ec);
            return ec;
        });
        const bool returned = done.wait_for(patience) == std::future_status::ready;
        if (!returned) client_->next_layer().close();  // the reset wakes a call that has no deadline
        const error_code ec = done.get();
        EXPECT_TRUE(returned) << "the call blocked for more than " << patience.count() << " s";
        return {ec, std::chrono::steady_clock::now() - started};
    }

    std::optional<tls_socket> server_;
    std::optional<client_stream> client_;
};

TEST_F(stuck_client_test, synchronous_shutdown_gives_up_after_its_deadline) {
    connect_and_fill();
    const auto [ec, took] = time_blocking([](tls_socket& s, error_code& ec) { s.shutdown(ec); });
    EXPECT_EQ(ec, net::error::timed_out) << ec.message();
    EXPECT_GE(took, 2s);  // the default deadline is 3 s, as nginx's
    EXPECT_LT(took, 5s);
}

TEST_F(stuck_client_test, synchronous_teardown_gives_up_after_its_deadline) {
    connect_and_fill();
    const auto [ec, took] = time_blocking([](tls_socket& s, error_code& ec) { teardown(beast::role_type::server, s, ec); });
    EXPECT_EQ(ec, net::error::timed_out) << ec.message();
    EXPECT_LT(took, 5s) << "close_notify and the wait for the client's FIN share one deadline";
    EXPECT_FALSE(server_->next_layer().is_open());
}

// OpenSSL's error queue belongs to the thread, and other connections on it may leave entries
// behind: the error a failed construction reports must be its own.
TEST_F(tls_socket_test, a_failed_construction_reports_its_own_error_not_a_stale_one) {
    ssl::context moved_from(ssl::context::tls_server);
    const ssl::context keeper(std::move(moved_from));  // moved_from's native handle is null: SSL_new fails
    tcp_socket socket(io_, tcp::v4());
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);  // what some earlier call on this thread left
    try {
        tls_socket s(std::move(socket), moved_from);
        ADD_FAILURE() << "SSL_new(nullptr) succeeded";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(ERR_GET_LIB(static_cast<unsigned long>(e.code().value())), ERR_LIB_SSL) << e.code().message();
        EXPECT_EQ(ERR_GET_REASON(static_cast<unsigned long>(e.code().value())), SSL_R_NULL_SSL_CTX) << e.code().message();
    }
    ERR_clear_error();
}

// A handshake that OpenSSL suspends for something this socket cannot resume (here a ClientHello
// callback that asks for a retry) is a failure like any other: SSL_shutdown must not run on it.
TEST_F(tls_socket_test, an_unexpected_ssl_result_fails_the_connection) {
    SSL_CTX_set_client_hello_cb(server_ctx_->native_handle(), [](SSL*, int*, void*) { return SSL_CLIENT_HELLO_RETRY; }, nullptr);
    auto [server, unused] = run(
        [](tls_socket s) -> task<std::pair<error_code, error_code>> {
            auto [handshake_error] = co_await s.async_handshake(no_throw);
            auto [shutdown_error] = co_await s.async_shutdown(no_throw);
            co_return std::pair{handshake_error, shutdown_error};
        },
        [&](tcp_socket socket) -> task<int> {
            client_stream c(std::move(socket), client_ctx_);
            co_await c.async_handshake(ssl::stream_base::client, no_throw);  // ends when the server closes
            co_return 0;
        });
    EXPECT_EQ(server.first, ssl::error::unexpected_result) << server.first.message();
    EXPECT_FALSE(server.second) << "SSL_shutdown ran after a failure: " << server.second.message();
}

// TLS 1.3: the client sends KeyUpdates that request one back while a server write is parked
// mid-record (the client is not reading).  OpenSSL defers its answer to the first one; at the
// second it tries to send it from inside SSL_read, with part of the parked record unsent, and
// fails the connection ("bad length").  The read must wait for the write, and everything must
// arrive intact.
TEST_F(tls_socket_test, a_key_update_request_during_a_parked_write_keeps_the_connection) {
    client_receive_buffer_ = 8192;
    pin_client_version(TLS1_3_VERSION);
    const std::string big = pattern(1 << 20);
    event client_sent(io_), server_reading(io_);
    struct server_result {
        error_code read_error, write_error, after_error;
        std::string read;
        std::size_t written = 0;
    };
    auto [server, client] = run(
        [&](tls_socket s) -> task<server_result> {
            s.next_layer().set_option(net::socket_base::send_buffer_size(8192));
            co_await s.async_handshake(use_awaitable);
            server_result out;
            std::string in(16, '\0');
            net::steady_timer both_done(s.get_executor(), net::steady_timer::time_point::max());
            int done = 0;
            // 1 MB cannot fit in the kernel's buffers: the write parks until the client reads.
            net::async_write(s, net::buffer(big), [&](error_code ec, std::size_t n) {
                out.write_error = ec;
                out.written = n;
                if (++done == 2) both_done.cancel();
            });
            co_await client_sent.wait();
            co_await s.next_layer().async_wait(tcp::socket::wait_read, use_awaitable);  // the KeyUpdate is here
            // The read's first attempt runs inside this call, with the write parked.
            s.async_read_some(net::buffer(in), [&](error_code ec, std::size_t n) {
                out.read_error = ec;
                out.read = in.substr(0, n);
                if (++done == 2) both_done.cancel();
            });
            server_reading.fire();
            co_await both_done.async_wait(no_throw);
            // Under the new keys both ways.
            auto [ec, n] = co_await net::async_write(s, net::buffer("after", 5), no_throw);
            out.after_error = ec;
            co_return out;
        },
        [&](tcp_socket socket) -> task<std::pair<bool, std::string>> {
            client_stream c(std::move(socket), client_ctx_);
            co_await client_handshake(c);
            for (int i = 0; i < 2; ++i) {
                EXPECT_EQ(SSL_key_update(c.native_handle(), SSL_KEY_UPDATE_REQUESTED), 1);
                co_await c.async_handshake(ssl::stream_base::client, use_awaitable);  // sends the KeyUpdate
            }
            co_await net::async_write(c, net::buffer("ping", 4), use_awaitable);
            client_sent.fire();
            co_await server_reading.wait();
            std::string back(big.size(), '\0');
            auto [ec, n] = co_await net::async_read(c, net::buffer(back), no_throw);
            std::string after(5, '\0');
            if (!ec) std::tie(ec, n) = co_await net::async_read(c, net::buffer(after), no_throw);
            co_return std::pair{back == big, ec ? ec.message() : after};
        });
    EXPECT_FALSE(server.read_error) << server.read_error.message();
    EXPECT_EQ(server.read, "ping");
    EXPECT_FALSE(server.write_error) << server.write_error.message();
    EXPECT_EQ(server.written, big.size());
    EXPECT_FALSE(server.after_error) << server.after_error.message();
    EXPECT_TRUE(client.first) << "the 1 MB the client read differs from what was sent";
    EXPECT_EQ(client.second, "after");
}

// Heap in use by the whole process.  Under AddressSanitizer malloc is ASan's, which glibc's
// mallinfo2 does not see, so ASan is asked instead.
std::size_t heap_in_use() {
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

// The clients of the memory test, in a child process so that the parent's heap holds only the
// server side.  Connects each batch, then waits for a byte on `release_fd` (EOF: stop).
[[noreturn]] void run_idle_clients(tcp::endpoint server, std::vector<int> batches, int release_fd) {
    try {
        net::io_context io;
        ssl::context ctx(ssl::context::tls_client);
        std::vector<std::unique_ptr<ssl::stream<tcp::socket>>> clients;
        for (const int count : batches) {
            for (int i = 0; i < count; ++i) {
                auto& c = *clients.emplace_back(std::make_unique<ssl::stream<tcp::socket>>(io, ctx));
                c.next_layer().connect(server);
                c.handshake(ssl::stream_base::client);
            }
            char go;
            if (::read(release_fd, &go, 1) != 1) break;
        }
        ::_exit(0);
    } catch (...) {
        ::_exit(1);
    }
}

TEST_F(tls_socket_test, idle_connection_holds_far_less_heap_than_ssl_stream) {
    constexpr int warm_up = 4, connections = 200;
    int release[2];
    ASSERT_EQ(::pipe(release), 0);
    const pid_t child = ::fork();  // before this test starts any thread
    ASSERT_NE(child, -1);
    if (child == 0) run_idle_clients(acceptor_.local_endpoint(), {warm_up, connections, connections}, release[0]);
    ::close(release[0]);
    struct reap_child {  // on every path: EOF on the pipe lets the child go; SIGKILL if it is stuck
        pid_t pid;
        int fd;
        ~reap_child() {
            ::close(fd);
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reaper{child, release[1]};
    auto let_child_continue = [&] { ASSERT_EQ(::write(release[1], "+", 1), 1); };

    // The first warm_up + connections become tls_sockets, the next connections ssl::streams.
    // Each keeps a read pending after its handshake, as an idle WebSocket does.
    std::vector<std::unique_ptr<tls_socket>> ours;
    std::vector<std::unique_ptr<ssl::stream<tcp_socket>>> asios;
    ours.reserve(warm_up + connections);
    asios.reserve(connections);
    char sink[1];
    int handshaken = 0, failed = 0;
    auto on_handshake = [&](auto& stream) {
        return [&](error_code ec) {
            if (ec) return void(++failed);
            ++handshaken;
            stream.async_read_some(net::buffer(sink), [](error_code, std::size_t) {});
        };
    };
    net::co_spawn(
        io_,
        [&]() -> task<void> {
            for (int i = 0; i < warm_up + 2 * connections; ++i) {
                auto socket = co_await acceptor_.async_accept(use_awaitable);
                if (i < warm_up + connections) {
                    auto& s = *ours.emplace_back(std::make_unique<tls_socket>(std::move(socket), *server_ctx_));
                    s.async_handshake(on_handshake(s));
                } else {
                    auto& s = *asios.emplace_back(std::make_unique<ssl::stream<tcp_socket>>(std::move(socket), *server_ctx_));
                    s.async_handshake(ssl::stream_base::server, on_handshake(s));
                }
            }
        },
        net::detached);

    run_until([&] { return handshaken == warm_up || failed; });
    ASSERT_EQ(handshaken, warm_up);
    const std::size_t before = heap_in_use();
    let_child_continue();
    run_until([&] { return handshaken == warm_up + connections || failed; });
    ASSERT_EQ(handshaken, warm_up + connections);
    const std::size_t with_ours = heap_in_use();
    let_child_continue();
    run_until([&] { return handshaken == warm_up + 2 * connections || failed; });
    ASSERT_EQ(handshaken, warm_up + 2 * connections);
    const std::size_t with_asio = heap_in_use();

    const auto per_tls_socket = static_cast<long>(with_ours - before) / connections;
    const auto per_ssl_stream = static_cast<long>(with_asio - with_ours) / connections;
    std::cout << "[ heap     ] idle handshaken server connection with a pending read: tls_socket " << per_tls_socket
              << " bytes, asio::ssl::stream " << per_ssl_stream << " bytes (" << connections << " each)\n";
    RecordProperty("tls_socket_bytes", static_cast<int>(per_tls_socket));
    RecordProperty("ssl_stream_bytes", static_cast<int>(per_ssl_stream));
    EXPECT_LT(per_tls_socket, 30 * 1024);
    EXPECT_LT(per_tls_socket * 2, per_ssl_stream);
}

}  // namespace
