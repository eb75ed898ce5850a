#include "redis_test_server.hpp"

#include <hiredis/hiredis.h>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace voice_broker::testing {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr const char* redis_server_binary = "/usr/bin/redis-server";

fs::path make_temp_dir() {
    static std::atomic<unsigned> counter{0};
    std::random_device entropy;
    for (int attempt = 0; attempt < 100; ++attempt) {
        // Short: a unix socket path must fit in 108 bytes.
        auto candidate = fs::temp_directory_path() /
                         ("vb-redis-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
                          std::to_string(entropy() % 100000));
        if (fs::create_directory(candidate)) return candidate;
    }
    throw std::runtime_error("cannot create a temporary directory for redis");
}

std::uint16_t free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot find a free port");
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

redis_reply to_reply(const redisReply& reply) {
    switch (reply.type) {
    case REDIS_REPLY_INTEGER: return redis_reply::make_integer(reply.integer);
    case REDIS_REPLY_STRING: return redis_reply::make_string(std::string(reply.str, reply.len));
    case REDIS_REPLY_STATUS: return redis_reply::make_status(std::string(reply.str, reply.len));
    case REDIS_REPLY_ERROR: return redis_reply::make_error(std::string(reply.str, reply.len));
    case REDIS_REPLY_ARRAY: {
        std::vector<redis_reply> elements;
        for (std::size_t i = 0; i < reply.elements; ++i) elements.push_back(to_reply(*reply.element[i]));
        return redis_reply::make_array(std::move(elements));
    }
    default: return redis_reply::nil();
    }
}

timeval to_timeval(std::chrono::milliseconds timeout) {
    return timeval{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
}

}  // namespace

bool eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    while (true) {
        if (check()) return true;
        if (clock_type::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
}

redis_test_server::redis_test_server(redis_server_options options) : options_(std::move(options)), dir_(make_temp_dir()) {
    if (::access(redis_server_binary, X_OK) != 0) {
        fs::remove_all(dir_);
        throw std::runtime_error(std::string(redis_server_binary) +
                                 " is missing: run scripts/install-deps.sh test (redis-server, redis-sentinel)");
    }
    notify_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const auto notify_path = (dir_ / "notify.sock").string();
    notify_path.copy(address.sun_path, sizeof address.sun_path - 1);
    if (notify_fd_ < 0 || ::bind(notify_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        throw std::runtime_error("cannot bind the notify socket " + notify_path);
    }
    std::string why;
    // A port found free may be taken by someone else before redis binds it: try a few.
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = options_.unix_socket ? 0 : free_loopback_port();
        write_config();
        if (launch(why)) return;
        if (options_.unix_socket) break;
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
    ::close(notify_fd_);
    throw std::runtime_error("redis did not start: " + why);
}

redis_test_server::~redis_test_server() {
    kill();
    if (notify_fd_ >= 0) ::close(notify_fd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

std::string redis_test_server::socket_path() const { return (dir_ / "redis.sock").string(); }

redis_endpoint redis_test_server::endpoint() const {
    if (options_.unix_socket) return redis_endpoint{{}, 0, socket_path()};
    return redis_endpoint{"127.0.0.1", port_, {}};
}

redis_url redis_test_server::url(int database) const {
    redis_url url;
    url.endpoint = endpoint();
    url.password = options_.password;
    url.database = database;
    return url;
}

void redis_test_server::write_config() {
    std::ostringstream config;
    config << "bind 127.0.0.1\n"
           << "port " << port_ << "\n"
           << "dir " << dir_.string() << "\n"
           << "logfile " << (dir_ / "redis.log").string() << "\n"
           << "supervised systemd\n"
           << "daemonize no\n";
    if (options_.unix_socket) config << "unixsocket " << socket_path() << "\nunixsocketperm 700\n";
    if (!options_.password.empty()) config << "requirepass \"" << options_.password << "\"\n";
    if (options_.sentinel_of) {
        config << "sentinel monitor mymaster 127.0.0.1 " << *options_.sentinel_of << " " << options_.sentinel_quorum
               << "\n"
               << "sentinel down-after-milliseconds mymaster " << options_.sentinel_down_after_ms << "\n"
               << "sentinel failover-timeout mymaster " << options_.sentinel_failover_timeout_ms << "\n"
               << "sentinel parallel-syncs mymaster 1\n";
        if (!options_.master_password.empty()) {
            config << "sentinel auth-pass mymaster \"" << options_.master_password << "\"\n";
        }
    } else {
        config << "save \"\"\nappendonly no\n"
               << "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n";
        if (options_.replica_of) config << "replicaof 127.0.0.1 " << *options_.replica_of << "\n";
        if (!options_.master_password.empty()) config << "masterauth \"" << options_.master_password << "\"\n";
    }
    for (const auto& line : options_.extra_config) config << line << "\n";
    std::ofstream(dir_ / "redis.conf", std::ios::trunc) << config.str();
}

bool redis_test_server::launch(std::string& why) {
    const auto config_path = (dir_ / "redis.conf").string();
    const auto notify_env = "NOTIFY_SOCKET=" + (dir_ / "notify.sock").string();
    std::vector<std::string> arg_strings{redis_server_binary, config_path};
    if (options_.sentinel_of) arg_strings.emplace_back("--sentinel");
    std::vector<char*> argv;
    for (auto& arg : arg_strings) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::string env_string = notify_env;
    std::string path_env = "PATH=/usr/bin:/bin";
    char* envp[] = {env_string.data(), path_env.data(), nullptr};
    const pid_t parent = ::getpid();

    const pid_t pid = ::fork();
    if (pid < 0) {
        why = "fork failed";
        return false;
    }
    if (pid == 0) {
        // Only async-signal-safe calls between fork and exec.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        const int null_fd = ::open("/dev/null", O_RDWR);
        if (null_fd >= 0) {
            ::dup2(null_fd, 0);
            ::dup2(null_fd, 1);
            ::dup2(null_fd, 2);
        }
        ::close_range(3, ~0U, 0);
        ::execve(redis_server_binary, argv.data(), envp);
        ::_exit(127);
    }
    pid_ = pid;
    if (wait_notification("READY=1", std::chrono::milliseconds{10000})) return true;
    why = "no READY=1 within 10 s; log:\n" + log();
    kill();
    return false;
}

bool redis_test_server::wait_notification(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    char buffer[4096];
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left.count() <= 0) return false;
        pollfd ready{notify_fd_, POLLIN, 0};
        // Wake at least every 100 ms to notice a server that exited instead.
        const int n = ::poll(&ready, 1, static_cast<int>(std::min<long>(left.count(), 100)));
        if (n > 0) {
            const auto length = ::recv(notify_fd_, buffer, sizeof buffer, 0);
            if (length > 0 && std::string(buffer, static_cast<std::size_t>(length)).find(needle) != std::string::npos) {
                return true;
            }
            continue;
        }
        int status = 0;
        if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
    }
}

void redis_test_server::pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void redis_test_server::resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void redis_test_server::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

void redis_test_server::restart() {
    kill();
    // Drop notifications left over from the previous run.
    char buffer[4096];
    while (::recv(notify_fd_, buffer, sizeof buffer, MSG_DONTWAIT) > 0) {
    }
    std::string why;
    if (!launch(why)) throw std::runtime_error("redis did not restart: " + why);
}

void redis_test_server::wait_for_sync(std::chrono::milliseconds timeout) {
    if (!wait_notification("sync: Finished with success", timeout)) {
        throw std::runtime_error("the replica did not finish its sync; log:\n" + log());
    }
}

redis_reply redis_test_server::command(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
    const auto tv = to_timeval(timeout);
    redisContext* context = options_.unix_socket ? redisConnectUnixWithTimeout(socket_path().c_str(), tv)
                                                 : redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (context == nullptr || context->err != 0) {
        const std::string why = context ? context->errstr : "out of memory";
        if (context) redisFree(context);
        throw std::runtime_error("cannot reach redis at " + endpoint().to_string() + ": " + why);
    }
    redisSetTimeout(context, tv);
    auto run = [&](const std::vector<std::string>& command) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lengths;
        for (const auto& arg : command) {
            argv.push_back(arg.data());
            lengths.push_back(arg.size());
        }
        auto* reply = static_cast<redisReply*>(
            redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data()));
        if (reply == nullptr) {
            const std::string why = context->errstr;
            redisFree(context);
            throw std::runtime_error("redis at " + endpoint().to_string() + " did not answer: " + why);
        }
        auto value = to_reply(*reply);
        freeReplyObject(reply);
        return value;
    };
    if (!options_.password.empty()) run({"AUTH", options_.password});
    auto result = run(args);
    redisFree(context);
    return result;
}

std::string redis_test_server::log() const {
    std::ifstream in(dir_ / "redis.log");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace voice_broker::testing
