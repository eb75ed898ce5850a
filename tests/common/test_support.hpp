// Shared test helpers: temporary folders, an in-process server on port 0 built from settings
// given as environment variables, captured logs, and a runner for the real binary.
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/server.hpp"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace voice_broker::testing {

class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path write(const std::string& relative, const std::string& content) const;

private:
    std::filesystem::path path_;
};

// A small site: index.html, app.js and styles.css large enough to be gzipped, plus a secret
// file next to the root that no request may reach.
std::filesystem::path make_static_site(const temp_dir& dir);

// Everything the server logs, while it lives (installs itself as the default logger).
class log_capture {
public:
    log_capture(std::vector<std::string> secrets = {});
    ~log_capture();
    std::string text() const;
    // Waits until a line containing `needle` was logged; false on timeout.
    bool wait_for(const std::string& needle, std::chrono::milliseconds timeout) const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

using settings_map = std::map<std::string, std::string>;

// Loads settings the way the binary does, from an environment map (and optional flags),
// with the working directory at `cwd`.  Throws with the config error's message.
config make_config(const settings_map& env, const std::filesystem::path& cwd, std::vector<std::string> args = {});

// An in-process voice-broker on 127.0.0.1 and a free port, serving a fresh static site.
class test_server {
public:
    explicit test_server(settings_map env = {}, server_options options = {});
    ~test_server();

    std::uint16_t port() const { return server_->port(); }
    voice_broker::server& get() { return *server_; }
    const config& settings() const { return settings_; }
    const temp_dir& dir() const { return dir_; }
    log_capture& logs() { return *logs_; }
    void stop_and_wait();

private:
    temp_dir dir_;
    config settings_;
    std::unique_ptr<log_capture> logs_;
    std::unique_ptr<voice_broker::server> server_;
    bool stopped_ = false;
};

// Runs a program with an environment, capturing its output; every wait is bounded.
class subprocess {
public:
    subprocess(const std::string& program, const std::vector<std::string>& args, const settings_map& env,
               const std::filesystem::path& cwd);
    ~subprocess();

    // Waits until the combined output contains `needle`; returns the output so far, or nullopt on timeout.
    std::optional<std::string> wait_for_output(const std::string& needle, std::chrono::milliseconds timeout);
    void signal(int signo);
    // The exit code (or 128+signal), or nullopt when it is still running after the timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    std::string output() const;

private:
    void reader_loop(int fd);
    int pid_ = -1;
    std::thread reader_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::string output_;
    bool eof_ = false;
    std::optional<int> exit_code_;
};

// Path of the built binary (set by CMake).
std::string voice_broker_binary();
std::string source_dir();

}  // namespace voice_broker::testing
