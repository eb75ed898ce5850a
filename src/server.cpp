// server: the listener, signals, SIGHUP reloads and the two-phase shutdown.  It owns the I/O
// threads (one io_context each), the session service, the router and the shared context.
#include "voice_broker/logging.hpp"
#include "voice_broker/server.hpp"

#include "session_entry_points.hpp"
#include "tls_detector.hpp"
#include "voice_broker/admin_auth.hpp"
#include "voice_broker/certificate.hpp"
#include "voice_broker/client_identity.hpp"
#include "voice_broker/file_io.hpp"
#include "voice_broker/metrics.hpp"
#include "redis_store.hpp"
#include "voice_broker/openai_client.hpp"
#include "voice_broker/proxy_settings.hpp"
#include "voice_broker/sideband_client.hpp"
#include "voice_broker/router.hpp"
#include "voice_broker/session_service.hpp"
#include "voice_broker/static_files.hpp"
#include "voice_broker/tls_context.hpp"

#include <spdlog/spdlog.h>

#include <thread>

#include <unistd.h>

namespace voice_broker {

// ---- the server ---------------------------------------------------------------------------------

namespace {

std::string read_text(const std::string& path) {
    auto text = read_file(path);
    if (!text) throw std::runtime_error("cannot read " + path);
    return std::move(*text);
}

std::shared_ptr<ssl::context> load_tls(const config& c) {
    if (!c.tls_cert_file.empty()) {
        try {
            return make_server_tls_context(read_text(c.tls_cert_file), read_text(c.tls_key_file));
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("TLS_CERT_FILE/TLS_KEY_FILE: ") + e.what());
        }
    }
    if (c.tls_self_signed) {
        std::vector<std::string> names{"localhost", "127.0.0.1", "::1"};
        if (c.host != "0.0.0.0" && c.host != "::" && c.host != "127.0.0.1") names.push_back(c.host);
        const auto pem = make_self_signed_certificate(names, 30);
        spdlog::warn("TLS: using a throwaway self-signed certificate; browsers will warn. Use a real one in production.");
        return make_server_tls_context(pem.certificate, pem.private_key);
    }
    return nullptr;
}

}  // namespace

// An io_context whose pending handlers can be destroyed once its threads have ended: they hold
// the server (and the sessions) alive through shared_from_this, so they must go first.
// Each I/O thread runs its own (the nginx model): a connection lives on one thread from accept
// to close, so its handlers never race and need no strand.
class owning_io_context : public net::io_context {
public:
    owning_io_context() : net::io_context(1) {}
    using net::io_context::shutdown;
};

namespace {

// "host-1234": unique per process on a host, readable in logs.
std::string default_instance_id() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "voice-broker");
    return std::string(host) + "-" + std::to_string(::getpid());
}

// An I/O thread's loop.  An exception escaping a handler is caught here, at the thread's
// boundary, and the loop goes on: one connection's failure never takes the process down (its
// own objects are gone with the unwinding; a request's responder answers 500 as it goes).
void run_guarded(net::io_context& context) {
    for (;;) {
        try {
            context.run();
            return;
        } catch (const std::exception& e) {
            spdlog::error("I/O thread: {}; carrying on", e.what());
        } catch (...) {
            spdlog::error("I/O thread: an unknown exception; carrying on");
        }
    }
}

std::vector<std::unique_ptr<owning_io_context>> make_contexts(unsigned n) {
    std::vector<std::unique_ptr<owning_io_context>> out;
    for (unsigned i = 0; i < std::max(1u, n); ++i) out.push_back(std::make_unique<owning_io_context>());
    return out;
}
}  // namespace

struct server::impl : std::enable_shared_from_this<server::impl> {
    config settings;
    server_options options;
    // [0] also runs the listener, the signals and the session service.
    std::vector<std::unique_ptr<owning_io_context>> contexts;
    owning_io_context& ioc;
    std::vector<net::executor_work_guard<io_executor>> keep_running;
    std::size_t next_context = 0;
    metrics counters;
    keyed_quota connections_per_address;
    std::shared_ptr<admin_auth> admin;
    std::shared_ptr<realtime_upstream> upstream;
    std::shared_ptr<session_service> service;
    std::shared_ptr<router> routes;
    std::shared_ptr<server_context> ctx;
    tcp::acceptor acceptor{ioc};
    net::steady_timer accept_backoff{ioc};
    net::steady_timer grace_timer{ioc};
    net::signal_set signals{ioc};
    std::mutex tls_mutex;
    std::shared_ptr<ssl::context> tls;
    std::vector<std::thread> threads;
    std::thread reload_thread;
    std::atomic<bool> reloading{false};
    std::atomic<bool> stopping{false};
    std::uint16_t bound_port = 0;
    std::chrono::steady_clock::time_point last_accept_warning{};

    impl(config c, server_options o)
        : settings(std::move(c)),
          options(std::move(o)),
          contexts(make_contexts(settings.io_threads())),
          ioc(*contexts[0]),
          connections_per_address(settings.fair_use.connections_per_address) {}

    // New connections go round the threads.
    owning_io_context& pick_context() { return *contexts[next_context++ % contexts.size()]; }

    void stop_contexts() {
        keep_running.clear();
        for (auto& c : contexts) c->stop();
    }

    void init() {
        tls = load_tls(settings);
        upstream = options.upstream;
        if (!upstream && !settings.openai.api_key.empty()) upstream = make_openai_client(settings.openai, counters);
        if (settings.store.instance_id.empty()) settings.store.instance_id = default_instance_id();
        counters.instance_id = settings.store.instance_id;
        admin = std::make_shared<admin_auth>(settings.admin_token, settings.admin_login_lifetime);
        service = session_service::create(ioc, settings, counters, upstream, service_options_for(settings));
        listen();
        routes = std::make_shared<router>(routing_settings{settings.trusted_proxies, bound_port}, service, counters,
                                          static_files::load(settings.static_dir), admin);
        ctx = std::make_shared<server_context>(settings, routes, service, counters);
    }

    // Where the shared state lives: this process, or Redis.
    service_options service_options_for(const config& c) {
        service_options out;
        out.admin = admin;
        out.sideband = make_sideband(c);
        if (c.store.kind == store_kind::redis) {
            out.make_store = [this, store = c.store, limits = c.session](const net::any_io_executor& strand,
                                                                        std::function<steady_time()> clock) {
                return make_redis_store(strand, limits, std::move(clock), redis_store_options{store}, counters);
            };
        }
        return out;
    }

    // The calls' sidebands live on context [0], which one thread runs (as tls_socket needs).
    std::shared_ptr<sideband_client> make_sideband(const config& c) {
        if (!c.cost.sideband || c.openai.api_key.empty()) return nullptr;
        auto proxies = proxy_settings::from_environment([](const std::string& name) -> std::optional<std::string> {
            if (const char* v = std::getenv(name.c_str())) return std::string(v);
            return std::nullopt;
        });
        auto made = sideband_client::create(ioc, make_sideband_settings(c, std::move(proxies)));
        if (auto* error = std::get_if<std::string>(&made)) {
            spdlog::error("cost: no sidebands ({}); calls are priced by the per-minute estimate", *error);
            return nullptr;
        }
        return std::get<std::shared_ptr<sideband_client>>(made);
    }

    void listen() {
        error_code ec;
        const auto address = net::ip::make_address(settings.host, ec);
        if (ec) throw std::runtime_error("HOST " + settings.host + " is not an IP address");
        const tcp::endpoint endpoint{address, settings.port};
        const auto where = settings.host + ":" + std::to_string(settings.port);
        acceptor.open(endpoint.protocol(), ec);
        if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
        if (!ec) acceptor.bind(endpoint, ec);
        if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
        if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
        bound_port = acceptor.local_endpoint().port();
    }

    void start_accepting() {
        if (options.handle_signals) {
            signals.add(SIGTERM);
            signals.add(SIGINT);
            signals.add(SIGHUP);
            wait_signal();
        }
        do_accept();
    }

    void wait_signal() {
        signals.async_wait([self = shared_from_this()](error_code ec, int signo) {
            if (ec) return;
            if (signo == SIGHUP) {
                self->reload_in_background();
            } else if (self->stopping.load()) {
                spdlog::warn("second signal: stopping at once");
                flush_logs();  // _Exit runs no destructor: what was logged would be lost
                std::_Exit(1);
            } else {
                spdlog::info("signal {}: shutting down (send it again to stop at once)", signo);
                self->begin_stop();
            }
            self->wait_signal();
        });
    }

    void do_accept() {
        acceptor.async_accept(pick_context(), [self = shared_from_this()](error_code ec, tcp_socket socket) {
            self->on_accept(ec, std::move(socket));
        });
    }

    void on_accept(error_code ec, tcp_socket socket) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
        // Accept errors come from the OS: compare errno values (EMFILE, ENFILE, ENOBUFS, ENOMEM).
        const int err = ec.value();
        if (ec && (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)) {
            // Out of file descriptors: wait for connections to close instead of spinning.
            const auto now = std::chrono::steady_clock::now();
            if (now - last_accept_warning > std::chrono::seconds{10}) {
                last_accept_warning = now;
                spdlog::warn("accept: {}; pausing new connections for 100 ms", ec.message());
            }
            accept_backoff.expires_after(std::chrono::milliseconds{100});
            accept_backoff.async_wait([self = shared_from_this()](error_code e) {
                if (!e) self->do_accept();
            });
            return;
        }
        if (ec) {
            spdlog::info("accept: {}", ec.message());
            return do_accept();
        }
        const auto open = counters.open_connections.fetch_add(1, std::memory_order_relaxed);
        counted_connection count(&counters.open_connections);
        if (static_cast<std::size_t>(open) >= settings.limits.max_connections || !take_address_share(socket, count)) {
            counters.connections_rejected.fetch_add(1, std::memory_order_relaxed);
            error_code ignored;
            socket.close(ignored);  // the count's destructor gives it back
        } else {
            socket.set_option(tcp::no_delay(true), ec);
            // The connection starts on its own thread, where all its handlers will run.
            auto executor = socket.get_executor();
            net::dispatch(executor, [self = shared_from_this(), socket = std::move(socket), count = std::move(count)]() mutable {
                self->start_connection(std::move(socket), std::move(count));
            });
        }
        do_accept();
    }

    // MAX_CONNECTIONS_PER_ADDRESS: a trusted proxy (nginx) carries everyone, so only other peers count.
    bool take_address_share(tcp_socket& socket, counted_connection& count) {
        if (settings.fair_use.connections_per_address == 0) return true;
        error_code ec;
        const auto peer = socket.remote_endpoint(ec);
        if (ec) return true;
        auto address = peer.address().to_string();
        if (address.rfind("::ffff:", 0) == 0) address.erase(0, 7);
        if (is_trusted_proxy(settings.trusted_proxies, address)) return true;
        if (!connections_per_address.try_take(address)) return false;
        count.hold_address_share(connections_per_address, std::move(address));
        return true;
    }

    void start_connection(tcp_socket socket, counted_connection count) {
        std::shared_ptr<ssl::context> tls_now;
        {
            std::lock_guard lock(tls_mutex);
            tls_now = tls;
        }
        if (!tls_now) return run_plain_http(std::move(socket), ctx, std::move(count), false);
        detect_tls(std::move(socket), std::move(tls_now), ctx, std::move(count));
    }

    // SIGHUP's work (reading the settings, the certificate, the whole site and gzipping it) runs
    // on a thread of its own, never on an I/O thread; one reload at a time.
    void reload_in_background() {
        if (!options.reload_config) return;
        if (reloading.exchange(true)) {
            spdlog::warn("SIGHUP: a reload is still running; this one is skipped");
            return;
        }
        if (reload_thread.joinable()) reload_thread.join();
        reload_thread = std::thread([self = shared_from_this()] {
            if (auto fresh = self->options.reload_config()) self->reload(*fresh);
            self->reloading.store(false);
        });
    }

    void reload(const config& fresh) {
        try {
            auto new_tls = load_tls(fresh);
            if (new_tls) {
                std::lock_guard lock(tls_mutex);
                tls = std::move(new_tls);
            }
            routes->replace_static_files(static_files::load(fresh.static_dir));
            service->reload(fresh);
            spdlog::info("reloaded: certificate, static files and session limits");
        } catch (const std::exception& e) {
            spdlog::error("reload failed, keeping the running settings: {}", e.what());
        }
    }

    void begin_stop() {
        net::post(ioc, [self = shared_from_this()] {
            if (self->stopping.exchange(true)) return;
            // Phase 1: no new connections; tell everyone why.
            error_code ignored;
            self->acceptor.close(ignored);
            self->accept_backoff.cancel();
            self->ctx->shutting_down.store(true);
            self->routes->set_shutting_down();
            self->service->shutdown(self->settings.store.kind == store_kind::memory, [self] {
                // Phase 2: idle connections close now, busy ones after their answer; WebSockets
                // get "going away".  Whatever is left when the grace ends is cut off.
                self->ctx->registry.shutdown_all();
                self->grace_timer.expires_after(self->settings.shutdown_grace);
                self->grace_timer.async_wait([self](error_code ec) {
                    if (!ec) spdlog::warn("shutdown: grace period over with {} connection(s) open", self->ctx->registry.size());
                    self->ctx->registry.when_empty(nullptr);  // drop the callback (and its reference to us)
                    self->signals.cancel();
                    self->stop_contexts();
                });
                // Stop as soon as the last connection has closed, without waiting out the grace.
                self->ctx->registry.when_empty([self] { net::post(self->ioc, [self] { self->grace_timer.cancel(); }); });
            });
        });
    }
};

server::server(config settings, server_options options)
    : impl_(std::make_shared<impl>(std::move(settings), std::move(options))) {
    impl_->init();
}

server::~server() {
    if (!impl_->threads.empty()) {
        stop();
        wait();
    }
    if (impl_->reload_thread.joinable()) impl_->reload_thread.join();
    // Pending hang-ups go out; the upstream's last callbacks land in the stopped io_context,
    // whose queued handlers are then destroyed here, on this thread.
    if (impl_->upstream) impl_->upstream->close();
    for (auto& c : impl_->contexts) c->shutdown();
}

std::uint16_t server::port() const { return impl_->bound_port; }
metrics& server::counters() { return impl_->counters; }

void server::start() {
    impl_->start_accepting();
    const auto n = static_cast<unsigned>(impl_->contexts.size());
    for (auto& c : impl_->contexts) {
        // Every thread keeps running until the server stops, even while it has no connection:
        // other threads post to it (the service on [0], pushes to WebSockets on any).
        impl_->keep_running.push_back(net::make_work_guard(c->get_executor()));
        impl_->threads.emplace_back([self = impl_, context = c.get()] { run_guarded(*context); });
    }
    const auto& c = impl_->settings;
    spdlog::info("voice-broker {} listening on {}://{}:{} ({} thread(s), {} slot(s), {} s sessions, {} store, instance {})",
                 VOICE_BROKER_VERSION, impl_->tls ? "https" : "http", c.host, impl_->bound_port, n,
                 c.session.max_concurrent_users, c.session.session_duration.count(),
                 c.store.kind == store_kind::redis ? "redis" : "memory", c.store.instance_id);
}

void server::wait() {
    for (auto& t : impl_->threads) {
        if (t.joinable()) t.join();
    }
    impl_->threads.clear();
    if (impl_->reload_thread.joinable()) impl_->reload_thread.join();
}

void server::run() {
    start();
    wait();
    spdlog::info("voice-broker stopped");
}

void server::stop() { impl_->begin_stop(); }

void server::reload(const config& fresh) { impl_->reload(fresh); }

}  // namespace voice_broker
