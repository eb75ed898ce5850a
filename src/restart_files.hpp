// restart_files: what a single instance (memory mode) keeps in DATA_DIR so that a restart loses
// nobody and leaks no money: the operator's runtime settings (limits, pause), the waiting
// visitors' places written at SIGTERM, and every upstream call of a running session with the
// instant its session ends (written ahead, so that a restart after kill -9 still hangs it up).
// Each file is written atomically (a reader or a crash sees the old one or the new one), on a
// writer thread of its own: the store's strand never waits for a disk (a newer content of a file
// replaces one not yet written).  The destructor writes what is pending.  An empty folder name
// keeps nothing (tests).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace voice_broker {

using wall_time = std::chrono::system_clock::time_point;

struct operator_settings {
    std::optional<std::size_t> max_concurrent_users;
    std::optional<std::chrono::seconds> session_duration;
    bool paused = false;
};

struct saved_queue {
    std::vector<std::string> tickets;  // head first
    wall_time saved_at{};
};

struct pending_call {
    std::string call_id;
    wall_time hang_up_at{};  // the end of its session
};

class restart_files {
public:
    explicit restart_files(std::filesystem::path folder);
    ~restart_files();
    restart_files(const restart_files&) = delete;
    restart_files& operator=(const restart_files&) = delete;

    // Waits until every write asked for so far is on disk.
    void flush();

    operator_settings load_operator() const;
    void save_operator(const operator_settings& settings) const;

    // The places saved at the last SIGTERM, read once (the file is removed).
    std::optional<saved_queue> take_queue() const;
    void save_queue(const saved_queue& queue) const;

    std::vector<pending_call> load_calls() const;
    // `written` (optional) runs on the writer thread once the list is on disk (at once when
    // nothing is kept): a call is acknowledged only then, so that a kill -9 cannot lose it.
    void save_calls(const std::vector<pending_call>& calls, std::function<void()> written = {}) const;

private:
    std::optional<std::string> read(const char* name) const;
    void write(const char* name, std::string text, std::function<void()> written = {}) const;
    void run();

    std::filesystem::path folder_;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    mutable std::map<std::string, std::string> pending_;  // file name -> newest content
    mutable std::vector<std::function<void()>> on_written_;  // run once the pending files are written
    mutable bool writing_ = false;
    bool stopping_ = false;
    std::thread writer_;
};

}  // namespace voice_broker
