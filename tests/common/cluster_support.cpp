#include "cluster_support.hpp"

#include "test_client.hpp"

#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace voice_broker::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ---- child_process ------------------------------------------------------------------------------

child_process::child_process(const std::string& program, const std::vector<std::string>& args, const settings_map& env,
                             const fs::path& cwd) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    if (!env.count("PATH")) env_strings.emplace_back("PATH=/usr/local/bin:/usr/bin:/bin");
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_strings{program};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    const auto dir = cwd.string();
    const pid_t parent = ::getpid();

    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        // Only async-signal-safe calls between fork and exec.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        const int null_fd = ::open("/dev/null", O_RDONLY);
        if (null_fd >= 0) ::dup2(null_fd, 0);
        if (::chdir(dir.c_str()) != 0) ::_exit(126);
        ::execve(program.c_str(), argv.data(), envp.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] { reader_loop(fd); });
}

void child_process::reader_loop(int fd) {
    char buf[8192];
    while (true) {
        const auto n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        std::lock_guard lock(mutex_);
        output_.append(buf, static_cast<std::size_t>(n));
        changed_.notify_all();
    }
    ::close(fd);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    std::lock_guard lock(mutex_);
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    changed_.notify_all();
}

child_process::~child_process() {
    if (!wait_exit(0ms)) ::kill(pid_, SIGKILL);
    if (reader_.joinable()) reader_.join();
}

void child_process::signal(int signo) {
    std::lock_guard lock(mutex_);
    if (!exit_code_) ::kill(pid_, signo);  // never a pid that was reaped (and may be reused)
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return exit_code_.has_value(); });
    return exit_code_;
}

bool child_process::running() { return !wait_exit(0ms).has_value(); }

std::string child_process::output() const {
    std::lock_guard lock(mutex_);
    return output_;
}

bool child_process::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout, std::size_t count) {
    const auto occurrences = [&] {
        std::size_t n = 0;
        for (auto at = output_.find(needle); at != std::string::npos; at = output_.find(needle, at + needle.size())) ++n;
        return n;
    };
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return occurrences() >= count || exit_code_.has_value(); }) &&
           occurrences() >= count;
}

// ---- broker_process -----------------------------------------------------------------------------

broker_process::broker_process(std::string name, settings_map env) : name_(std::move(name)) {
    env.try_emplace("HOST", "127.0.0.1");
    env.try_emplace("PORT", "0");
    env.try_emplace("THREADS", "1");
    env.try_emplace("STATIC_DIR", make_static_site(dir_).string());
    env.try_emplace("ASAN_OPTIONS", "detect_leaks=1");
    env.try_emplace("SHUTDOWN_GRACE_SECONDS", "3");
    // Every test client comes from 127.0.0.1: the per-address limits are off (as in test_server).
    env.try_emplace("MAX_TICKETS_PER_ADDRESS", "0");
    env.try_emplace("JOIN_RATE_PER_ADDRESS", "0");
    env.try_emplace("INSTANCE_ID", name_);
    process_ = std::make_unique<child_process>(voice_broker_binary(), std::vector<std::string>{}, env, dir_.path());
    if (!process_->wait_for_output("listening on", 20s)) {
        throw std::runtime_error(name_ + " did not start: " + process_->output());
    }
    std::smatch m;
    static const std::regex re(R"(listening on https?://127\.0\.0\.1:([0-9]+))");
    const auto out = process_->output();
    if (!std::regex_search(out, m, re)) throw std::runtime_error(name_ + ": no port in " + out);
    port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
}

void broker_process::crash() {
    process_->signal(SIGKILL);
    process_->wait_exit(10s);
}

std::optional<int> broker_process::terminate(std::chrono::milliseconds timeout) {
    process_->signal(SIGTERM);
    return process_->wait_exit(timeout);
}

std::optional<std::string> broker_process::sanitizer_report() const {
    const auto out = output();
    static const std::regex report(R"(ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer)");
    std::smatch m;
    if (!std::regex_search(out, m, report)) return std::nullopt;
    return out.substr(static_cast<std::size_t>(m.position(0)), 4000);
}

// ---- nginx_process ------------------------------------------------------------------------------

std::uint16_t free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot find a free port");
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

namespace {

// The proxying of nginx.example.conf (its HTTPS server block), on plain HTTP: the same map for
// Connection, the same headers, timeouts and locations; the upstream lists every instance.
std::string nginx_config(const fs::path& dir, std::uint16_t port, const std::vector<std::uint16_t>& instances,
                         nginx_process::flavour flavour) {
    const bool several = flavour == nginx_process::flavour::several_instances;
    std::ostringstream c;
    c << "daemon off;\nmaster_process off;\nworker_processes 1;\n"
      << "pid " << (dir / "nginx.pid").string() << ";\n"
      << "error_log " << (dir / "error.log").string() << " notice;\n"
      << "events { worker_connections 1024; }\n"
      << "http {\n"
      << "    access_log " << (dir / "access.log").string() << ";\n"
      << "    client_body_temp_path " << (dir / "client_body").string() << ";\n"
      << "    proxy_temp_path " << (dir / "proxy").string() << ";\n"
      << "    fastcgi_temp_path " << (dir / "fastcgi").string() << ";\n"
      << "    uwsgi_temp_path " << (dir / "uwsgi").string() << ";\n"
      << "    scgi_temp_path " << (dir / "scgi").string() << ";\n"
      << "    map $http_upgrade $voice_broker_connection {\n        default upgrade;\n        ''      '';\n    }\n"
      << "    upstream voice_broker {\n" << (several ? "        least_conn;\n" : "");
    for (auto p : instances) c << "        server 127.0.0.1:" << p << (several ? " max_fails=0" : "") << ";\n";
    c << (several ? "        keepalive 32;\n" : "        keepalive 16;\n") << "    }\n"
      << "    server {\n"
      << "        listen 127.0.0.1:" << port << ";\n"
      << "        client_max_body_size 64k;\n"
      << "        proxy_http_version 1.1;\n"
      << "        proxy_set_header Host $host;\n"
      << "        proxy_set_header X-Forwarded-Host $http_host;\n"
      << "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
      << "        proxy_set_header X-Forwarded-Proto $scheme;\n"
      << "        proxy_set_header X-Real-IP $remote_addr;\n"
      << "        proxy_set_header Upgrade $http_upgrade;\n"
      << "        proxy_set_header Connection $voice_broker_connection;\n"
      << (several ? "        proxy_connect_timeout 2s;\n        proxy_next_upstream error timeout;\n"
                    "        proxy_next_upstream_tries 3;\n        proxy_next_upstream_timeout 10s;\n"
                  : "        proxy_connect_timeout 5s;\n")
      << "        proxy_read_timeout 60s;\n"
      << "        proxy_send_timeout 60s;\n"
      << "        location = /api/session/ws {\n"
      << "            proxy_pass http://voice_broker;\n"
      << "            proxy_read_timeout 1h;\n"
      << "            proxy_send_timeout 1h;\n"
      << "            proxy_buffering off;\n"
      << "        }\n"
      << "        location /api/ {\n            proxy_pass http://voice_broker;\n            proxy_buffering off;\n        }\n"
      << "        location = /metrics {\n            return 404;\n        }\n"
      << "        location / {\n            proxy_pass http://voice_broker;\n        }\n"
      << "    }\n"
      << "}\n";
    return c.str();
}

bool port_answers(std::uint16_t port) {
    try {
        return fetch(port, "GET", "/api/health").status != 0;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

nginx_process::nginx_process(const std::vector<std::uint16_t>& instance_ports, flavour f) {
    std::string why;
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = free_loopback_port();
        const auto conf = dir_.write("nginx.conf", nginx_config(dir_.path(), port_, instance_ports, f));
        process_ = std::make_unique<child_process>("/usr/sbin/nginx", std::vector<std::string>{"-p", dir_.path().string(), "-c", conf.string()},
                                                   settings_map{}, dir_.path());
        // nginx announces nothing on stdout when ready: the listening socket answering is the sign.
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline && process_->running() && !port_answers(port_)) {
            std::this_thread::sleep_for(20ms);
        }
        if (process_->running() && port_answers(port_)) return;
        why = process_->output() + error_log();
        process_.reset();  // a port taken meanwhile: another one
    }
    throw std::runtime_error("nginx did not start: " + why);
}

nginx_process::~nginx_process() {
    if (!process_) return;
    process_->signal(SIGTERM);
    if (!process_->wait_exit(5s)) process_->signal(SIGKILL);
}

std::string nginx_process::error_log() const {
    std::ifstream in(dir_.path() / "error.log");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// ---- fake_openai_process ------------------------------------------------------------------------

const std::string& fake_openai_process::api_key() {
    static const std::string key = "test-openai-key-for-the-fake-cluster-0123456789";
    return key;
}

fake_openai_process::fake_openai_process(std::vector<std::string> extra_args) {
    std::vector<std::string> args{source_dir() + "/tests/fakes/fake-openai/server.mjs", "--port", "0"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    process_ = std::make_unique<child_process>("/usr/bin/node", args, settings_map{{"FAKE_OPENAI_KEY", api_key()}}, source_dir());
    if (!process_->wait_for_output("\"listening\"", 20s)) throw std::runtime_error("the fake OpenAI did not start: " + process_->output());
    std::smatch m;
    static const std::regex re(R"(\{"listening":([0-9]+)\})");
    const auto out = process_->output();
    if (!std::regex_search(out, m, re)) throw std::runtime_error("no port from the fake: " + out);
    port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
}

fake_openai_process::~fake_openai_process() {
    process_->signal(SIGTERM);
    if (!process_->wait_exit(5s)) process_->signal(SIGKILL);
}

nlohmann::json fake_openai_process::state() const { return fetch(port_, "GET", "/__control/state").json(); }

bool fake_openai_process::wait_hangups(int n, std::chrono::milliseconds timeout) const {
    return fetch(port_, "GET", "/__control/wait?hangups=" + std::to_string(n) + "&timeoutMs=" + std::to_string(timeout.count()))
               .status == 200;
}

std::string fake_openai_process::open_call(const std::string& ephemeral_key) const {
    static const std::string offer =
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n";
    const auto r = fetch(port_, "POST", "/v1/realtime/calls",
                         {{"Content-Type", "application/sdp"}, {"Authorization", "Bearer " + ephemeral_key}}, offer);
    if (r.status != 201) throw std::runtime_error("the fake refused the call: " + r.body);
    const auto location = r.header("location");
    return location.substr(location.rfind('/') + 1);
}

// ---- time ---------------------------------------------------------------------------------------

std::int64_t iso_to_unix_ms(const std::string& iso) {
    std::tm tm{};
    int millis = 0;
    if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                    &tm.tm_sec, &millis) < 6) {
        throw std::runtime_error("not an ISO 8601 time: " + iso);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<std::int64_t>(::timegm(&tm)) * 1000 + millis;
}

std::int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace voice_broker::testing
