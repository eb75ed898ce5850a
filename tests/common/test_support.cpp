#include "test_support.hpp"

#include "voice_broker/logging.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <random>
#include <stdexcept>

namespace voice_broker::testing {

namespace fs = std::filesystem;

temp_dir::temp_dir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("vb-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + std::to_string(rd()));
    fs::create_directories(path_);
}

temp_dir::~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

fs::path temp_dir::write(const std::string& relative, const std::string& content) const {
    const auto p = path_ / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
}

fs::path make_static_site(const temp_dir& dir) {
    std::string filler;
    for (int i = 0; i < 80; ++i) filler += "<p>Voice broker test page line " + std::to_string(i) + "</p>\n";
    dir.write("site/index.html", "<!doctype html><html><head><title>Voice</title></head><body>\n" + filler + "</body></html>\n");
    std::string js;
    for (int i = 0; i < 60; ++i) js += "export const line" + std::to_string(i) + " = 'value " + std::to_string(i) + "';\n";
    dir.write("site/app.js", js);
    dir.write("site/styles.css", std::string(2000, ' ') + "body { color: black; }\n");
    dir.write("site/favicon.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>");
    dir.write("site/img/logo.png", std::string("\x89PNG\r\n\x1a\n", 8) + std::string(100, '\x01'));
    dir.write("site/.hidden", "hidden file");
    dir.write("site/sub/index.html", "<!doctype html><title>sub</title>");
    dir.write("secret.txt", "TOP-SECRET-CONTENT");
    std::error_code ec;
    fs::create_symlink(dir.path() / "secret.txt", dir.path() / "site" / "link-out.txt", ec);
    return dir.path() / "site";
}

// ---- log capture --------------------------------------------------------------------------------

namespace {
class capture_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    std::string text() {
        std::lock_guard lock(mutex_);
        return out_;
    }
    bool wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
        std::unique_lock lock(cv_mutex_);
        return cv_.wait_for(lock, timeout, [&] {
            std::lock_guard inner(mutex_);
            return out_.find(needle) != std::string::npos;
        });
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        out_.append(formatted.data(), formatted.size());
        cv_.notify_all();
    }
    void flush_() override {}

private:
    std::string out_;
    std::mutex cv_mutex_;
    std::condition_variable_any cv_;
};
}  // namespace

struct log_capture::impl {
    std::shared_ptr<capture_sink> sink = std::make_shared<capture_sink>();
};

namespace {
// The process's one default logger: two in-process servers (a test of two instances) share one
// capture, so that the second never swaps the logger while the first one's threads log through
// it (spdlog's default_logger_raw() is read without a lock: a data race under TSan).
std::mutex capture_mutex;
std::weak_ptr<void> current_capture;
}  // namespace

log_capture::log_capture(std::vector<std::string> secrets) {
    std::lock_guard lock(capture_mutex);
    if (auto shared = std::static_pointer_cast<impl>(current_capture.lock()); shared && secrets.empty()) {
        impl_ = std::move(shared);
        return;
    }
    impl_ = std::make_shared<impl>();
    setup_logging(log_format::text, "debug", std::move(secrets), impl_->sink);
    current_capture = impl_;
}

log_capture::~log_capture() {
    std::lock_guard lock(capture_mutex);
    if (impl_.use_count() > 1) return;  // another server still logs through it
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("null"));
}

std::string log_capture::text() const {
    flush_logs();  // the lines are written in batches: everything logged so far, now
    return impl_->sink->text();
}

bool log_capture::wait_for(const std::string& needle, std::chrono::milliseconds timeout) const {
    return impl_->sink->wait_for(needle, timeout);
}

// ---- servers ------------------------------------------------------------------------------------

config make_config(const settings_map& env, const fs::path& cwd, std::vector<std::string> args) {
    load_request req;
    req.args = std::move(args);
    req.working_dir = cwd.string();
    req.getenv = [env](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
    };
    auto result = load_config(req);
    if (auto* err = std::get_if<config_error>(&result)) throw std::runtime_error(err->message);
    return std::get<load_result>(result).settings;
}

test_server::test_server(settings_map env, server_options options) {
    const auto site = make_static_site(dir_);
    env.try_emplace("STATIC_DIR", site.string());
    env.try_emplace("PORT", "0");
    env.try_emplace("HOST", "127.0.0.1");
    env.try_emplace("THREADS", "2");
    env.try_emplace("SHUTDOWN_GRACE_SECONDS", "5");
    // Every test client comes from 127.0.0.1: the per-address limits are off unless a test is
    // about them (and then sets them).
    env.try_emplace("MAX_TICKETS_PER_ADDRESS", "0");
    env.try_emplace("JOIN_RATE_PER_ADDRESS", "0");
    settings_ = make_config(env, dir_.path());
    logs_ = std::make_unique<log_capture>(std::vector<std::string>{});
    server_ = std::make_unique<voice_broker::server>(settings_, std::move(options));
    server_->start();
}

void test_server::stop_and_wait() {
    if (stopped_) return;
    stopped_ = true;
    server_->stop();
    server_->wait();
}

test_server::~test_server() {
    stop_and_wait();
    server_.reset();
}

// ---- subprocess ---------------------------------------------------------------------------------

subprocess::subprocess(const std::string& program, const std::vector<std::string>& args, const settings_map& env,
                       const fs::path& cwd) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    env_strings.push_back("PATH=/usr/bin:/bin");
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_strings{program};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);

    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        if (::chdir(cwd.c_str()) != 0) ::_exit(126);
        ::execve(program.c_str(), argv.data(), envp.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] { reader_loop(fd); });
}

void subprocess::reader_loop(int fd) {
    char buf[4096];
    while (true) {
        const auto n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        std::lock_guard lock(mutex_);
        output_.append(buf, static_cast<std::size_t>(n));
        changed_.notify_all();
    }
    ::close(fd);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    std::lock_guard lock(mutex_);
    eof_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    changed_.notify_all();
}

subprocess::~subprocess() {
    if (!wait_exit(std::chrono::milliseconds{0})) {
        ::kill(pid_, SIGKILL);
    }
    if (reader_.joinable()) reader_.join();
}

std::optional<std::string> subprocess::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    const bool found = changed_.wait_for(lock, timeout, [&] { return output_.find(needle) != std::string::npos || eof_; });
    if (!found || output_.find(needle) == std::string::npos) return std::nullopt;
    return output_;
}

void subprocess::signal(int signo) { ::kill(pid_, signo); }

std::optional<int> subprocess::wait_exit(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return exit_code_.has_value(); });
    return exit_code_;
}

std::string subprocess::output() const {
    std::lock_guard lock(mutex_);
    return output_;
}

std::string voice_broker_binary() { return VOICE_BROKER_BINARY; }
std::string source_dir() { return VOICE_BROKER_SOURCE_DIR; }

}  // namespace voice_broker::testing
