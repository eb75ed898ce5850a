// Several real voice-broker processes as an operator runs them in redis mode, with what stands
// around them: a real nginx in front (an upstream of the instances, no sticky sessions, the
// WebSocket proxying of nginx.example.conf) and the fake OpenAI.  Every process listens on
// 127.0.0.1 only, dies with the test process (PR_SET_PDEATHSIG), and is stopped by its pid.
//
// Create the processes from the test's main thread: PR_SET_PDEATHSIG follows the thread that
// forked, so a child forked from a worker thread would die when that thread ends.
#pragma once

#include "test_support.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace voice_broker::testing {

// A child process with its stdout and stderr captured; killed (SIGKILL) with the test process
// and in the destructor if it still runs.
class child_process {
public:
    child_process(const std::string& program, const std::vector<std::string>& args, const settings_map& env,
                  const std::filesystem::path& cwd);
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int signo);
    // The exit code (or 128 + signal), or nullopt while it still runs after `timeout`.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    bool running();
    std::string output() const;
    // Waits until the output holds `needle` at least `count` times; false on timeout or exit.
    bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout, std::size_t count = 1);

private:
    void reader_loop(int fd);
    pid_t pid_ = -1;
    std::thread reader_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::string output_;
    std::optional<int> exit_code_;
};

// One voice-broker instance (the Debug binary), in an empty folder of its own.
class broker_process {
public:
    // `env` is the whole configuration; HOST=127.0.0.1 and PORT=0 are added unless given.
    broker_process(std::string name, settings_map env);

    const std::string& name() const { return name_; }
    std::uint16_t port() const { return port_; }
    child_process& process() { return *process_; }
    std::string output() const { return process_->output(); }
    bool wait_log(const std::string& needle, std::chrono::milliseconds timeout, std::size_t count = 1) {
        return process_->wait_for_output(needle, timeout, count);
    }
    // kill -9: the instance vanishes without a word.
    void crash();
    // SIGTERM and the exit code; nullopt when it did not stop within `timeout`.
    std::optional<int> terminate(std::chrono::milliseconds timeout = std::chrono::seconds{15});
    // A report from AddressSanitizer, LeakSanitizer or UBSan in the output, if any.
    std::optional<std::string> sanitizer_report() const;

private:
    std::string name_;
    temp_dir dir_;
    std::unique_ptr<child_process> process_;
    std::uint16_t port_ = 0;
};

// Debian's nginx, private (own prefix, pid file and logs), plain HTTP on 127.0.0.1, with one
// upstream of the given instances and the proxying of nginx.example.conf.
class nginx_process {
public:
    // example: the proxying of nginx.example.conf (round robin, nginx's default passive health);
    // several_instances: the upstream of docker/nginx/voice-broker-upstream.conf (least_conn,
    // max_fails=0, proxy_next_upstream error timeout, 3 tries).
    enum class flavour { example, several_instances };
    explicit nginx_process(const std::vector<std::uint16_t>& instance_ports, flavour f = flavour::example);
    ~nginx_process();

    std::uint16_t port() const { return port_; }
    std::string error_log() const;

private:
    temp_dir dir_;
    std::unique_ptr<child_process> process_;
    std::uint16_t port_ = 0;
};

// tests/fakes/fake-openai as a Node process on 127.0.0.1.
class fake_openai_process {
public:
    explicit fake_openai_process(std::vector<std::string> extra_args = {});
    ~fake_openai_process();

    static const std::string& api_key();
    std::uint16_t port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    nlohmann::json state() const;
    // Waits on the fake's own event (GET /__control/wait) until it has seen `n` hang-ups.
    bool wait_hangups(int n, std::chrono::milliseconds timeout) const;
    // Opens a call the way the page does in token mode (a dummy SDP offer with the ephemeral
    // key); returns the call id from Location.
    std::string open_call(const std::string& ephemeral_key) const;

private:
    std::unique_ptr<child_process> process_;
    std::uint16_t port_ = 0;
};

// A free TCP port on 127.0.0.1 right now (for programs that cannot take port 0, like nginx).
std::uint16_t free_loopback_port();

// Milliseconds since the Unix epoch of an ISO 8601 UTC time as the broker writes it
// ("2026-11-24T10:15:00.000Z").
std::int64_t iso_to_unix_ms(const std::string& iso);
std::int64_t unix_now_ms();

}  // namespace voice_broker::testing
