// server: voice-broker as an ordinary object.  Construct it from a config (it throws
// std::runtime_error with a clear message when it cannot start), start() or run(), stop().
// No globals: a test can run many on port 0 and ask each for its port().
#pragma once

#include "voice_broker/config.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

namespace voice_broker {

class metrics;
class realtime_upstream;

struct server_options {
    // Install SIGTERM/SIGINT (graceful stop, a second one stops at once) and SIGHUP (reload).
    bool handle_signals = false;
    // Produces fresh settings on SIGHUP; nullopt keeps the current ones.
    std::function<std::optional<config>()> reload_config;
    // Replaces the OpenAI client (tests); null means build one from the config.
    std::shared_ptr<realtime_upstream> upstream;
};

class server {
public:
    explicit server(config settings, server_options options = {});
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    std::uint16_t port() const;  // the bound port (useful with PORT=0)

    void start();  // runs the I/O threads in the background
    void run();    // start() and wait until stopped
    void wait();   // until the I/O threads have ended

    // Graceful, two-phase: stop accepting, end sessions and tell every client why, let in-flight
    // responses finish within SHUTDOWN_GRACE_SECONDS, then stop.  Returns at once.
    void stop();

    // SIGHUP: reload the certificate and key, the static files, and the session limits.
    void reload(const config& fresh);

    metrics& counters();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace voice_broker
