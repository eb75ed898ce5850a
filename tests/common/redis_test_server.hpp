// redis_test_server: a real Debian redis-server (or a Sentinel) for one test, in its own temporary
// folder with its own config, listening on a unix socket there or on a free loopback port.
//
// Readiness is the server's own word: it runs with `supervised systemd` and NOTIFY_SOCKET set, and
// the fixture waits for READY=1 (and, for a replica, the "sync finished" status) instead of
// polling.  It is stopped by its pid (SIGKILL, then reaped) when the object goes, also when the
// test fails; PR_SET_PDEATHSIG kills it if the test process itself dies.
#pragma once

#include "voice_broker/redis_endpoint.hpp"
#include "voice_broker/redis_reply.hpp"
#include "voice_broker/redis_url.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace voice_broker::testing {

struct redis_server_options {
    bool unix_socket = false;            // listen only on <dir>/redis.sock
    std::string password;                // requirepass (and, for a sentinel, its own password)
    std::optional<std::uint16_t> replica_of;  // replicaof 127.0.0.1 <port>
    std::string master_password;         // masterauth / sentinel auth-pass
    // Sentinel mode: monitor "mymaster" at 127.0.0.1:<port>.
    std::optional<std::uint16_t> sentinel_of;
    int sentinel_quorum = 2;
    int sentinel_down_after_ms = 1000;
    int sentinel_failover_timeout_ms = 4000;
    std::vector<std::string> extra_config;
};

class redis_test_server {
public:
    explicit redis_test_server(redis_server_options options = {});
    ~redis_test_server();
    redis_test_server(const redis_test_server&) = delete;
    redis_test_server& operator=(const redis_test_server&) = delete;

    std::uint16_t port() const { return port_; }  // 0 with a unix socket
    std::string socket_path() const;
    redis_endpoint endpoint() const;
    // With the password and database, ready for redis_client_options.
    redis_url url(int database = 0) const;
    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }
    const std::filesystem::path& dir() const { return dir_; }

    void pause();   // SIGSTOP: the socket stays open, nobody answers
    void resume();  // SIGCONT
    void kill();    // SIGKILL, reaped; restart() brings it back on the same port or socket
    void restart();

    // A replica: waits until the initial sync with its master has finished.
    void wait_for_sync(std::chrono::milliseconds timeout);

    // A blocking command through hiredis's synchronous API, for the test's own checks; throws when
    // the server cannot be reached within `timeout`.
    redis_reply command(const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds{2000}) const;

    std::string log() const;  // the server's log file, for failure messages

private:
    void write_config();
    bool launch(std::string& why);
    // Messages from the server through NOTIFY_SOCKET until one contains `needle`.
    bool wait_notification(const std::string& needle, std::chrono::milliseconds timeout);

    redis_server_options options_;
    std::filesystem::path dir_;
    std::uint16_t port_ = 0;
    int notify_fd_ = -1;
    pid_t pid_ = -1;
};

// Polls `check` every 20 ms until it is true or `timeout` passes; for the states nothing
// announces (a sentinel knowing its peers).
bool eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout);

}  // namespace voice_broker::testing
