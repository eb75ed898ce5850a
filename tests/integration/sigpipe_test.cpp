// SIGPIPE is ignored by the whole process, as nginx does (ngx_process.c), not only by the
// sockets that remember MSG_NOSIGNAL: libcurl with CURLOPT_NOSIGNAL, OpenSSL inside it, and the
// log written to a pipe all write(2) where a vanished reader would otherwise kill the server.
// The real binary logs to a pipe whose reader goes away, as under `voice-broker | tee` when tee
// dies or a log collector restarts; it must go on serving.
#include "test_client.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>

using namespace voice_broker::testing;

namespace {

// The binary with stdout and stderr on a pipe the test holds the reading end of.
class piped_binary {
public:
    piped_binary(const settings_map& env, const std::filesystem::path& cwd) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        std::vector<std::string> env_strings{"PATH=/usr/bin:/bin"};
        for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
        std::vector<char*> envp;
        for (auto& s : env_strings) envp.push_back(s.data());
        envp.push_back(nullptr);
        std::string program = voice_broker_binary();
        char* argv[] = {program.data(), nullptr};
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::signal(SIGPIPE, SIG_DFL);  // what a shell or a service manager hands over
            ::dup2(fds[1], 1);
            ::dup2(fds[1], 2);
            if (::chdir(cwd.c_str()) != 0) ::_exit(126);
            ::execve(program.c_str(), argv, envp.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        read_end_ = fds[0];
    }

    ~piped_binary() {
        close_reader();
        if (pid_ > 0 && !exit_status_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    // Reads the output until it says which port it listens on (0 after 20 s without).
    std::uint16_t wait_for_port() {
        static const std::regex listening(R"(listening on https?://[0-9.]+:([0-9]+))");
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        std::string output;
        char buf[4096];
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{read_end_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            const auto n = ::read(read_end_, buf, sizeof buf);
            if (n <= 0) break;
            output.append(buf, static_cast<std::size_t>(n));
            if (std::smatch m; std::regex_search(output, m, listening)) return static_cast<std::uint16_t>(std::stoi(m[1]));
        }
        ADD_FAILURE() << "no 'listening on' line; output: " << output;
        return 0;
    }

    // The reader goes away: every later log line meets EPIPE.
    void close_reader() {
        if (read_end_ >= 0) ::close(std::exchange(read_end_, -1));
    }

    // nullopt while it runs; else the raw wait status.
    std::optional<int> exited() {
        if (!exit_status_) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) exit_status_ = status;
        }
        return exit_status_;
    }

    std::optional<int> stop(std::chrono::seconds timeout) {
        if (!exited()) ::kill(pid_, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!exited() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
        return exit_status_;
    }

private:
    int pid_ = -1;
    int read_end_ = -1;
    std::optional<int> exit_status_;
};

std::string describe(int status) {
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
    return "exited with code " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

TEST(sigpipe, the_server_survives_its_log_reader_going_away) {
    temp_dir dir;
    piped_binary server({{"STATIC_DIR", make_static_site(dir).string()},
                         {"PORT", "0"},
                         {"THREADS", "1"},
                         {"LOG_LEVEL", "info"},  // every request writes an access-log line
                         {"ASAN_OPTIONS", "detect_leaks=0"}},
                        dir.path());
    const auto port = server.wait_for_port();
    ASSERT_NE(port, 0);
    ASSERT_EQ(fetch(port, "GET", "/api/health").status, 200u);
    server.close_reader();

    int answered = 0;
    for (int i = 0; i < 20; ++i) {
        try {
            if (fetch(port, "GET", "/api/health").status == 200) ++answered;
        } catch (const std::exception&) {
            break;  // the server is gone
        }
    }
    const auto status = server.exited();
    EXPECT_FALSE(status) << "the server died: " << describe(*status);
    EXPECT_EQ(answered, 20);
    const auto stopped = server.stop(15s);
    ASSERT_TRUE(stopped) << "no exit within 15 s of SIGTERM";
    EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << describe(*stopped);
}
