// buffered_log_sink: keeps the writing of log lines off the threads that log them (issue 15: one
// write and flush per access-log line on the I/O thread cost 0.875x the requests/s on figure 1).
// A caller formats its line on its own thread, with no lock held, and appends it to an in-memory
// batch under a short lock; a writer thread hands the batch to the destination sink every
// `interval`, or at once when the batch passes `batch_bytes` or holds a warning or worse.  So one
// write carries many lines, and no I/O thread ever waits for a file, a pipe or a terminal.
//
// A destination that stalls (a full pipe nobody reads) never blocks a caller: past `max_bytes`
// pending, new lines are dropped and counted (dropped()), and the next batch says how many.
// flush() hands everything over at once, on the caller's thread (shutdown, tests).  The
// destination receives whole batches of finished lines: give it a formatter that writes the
// payload as it is (setup_logging does).  The formatter set here is called from several threads at
// once: it must hold no mutable state (line_formatter holds none; so set_pattern is refused).
#pragma once

#include <spdlog/sinks/sink.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace voice_broker {

class buffered_log_sink final : public spdlog::sinks::sink {
public:
    struct limits {
        std::chrono::milliseconds interval{200};  // the longest a line waits when nothing is urgent
        std::size_t batch_bytes = 64 * 1024;      // a batch this large goes at once
        std::size_t max_bytes = 4 * 1024 * 1024;  // pending beyond this: lines are dropped
    };

    buffered_log_sink(std::shared_ptr<spdlog::sinks::sink> destination, limits limits);
    ~buffered_log_sink() override;  // stops the writer and hands over what is left
    buffered_log_sink(const buffered_log_sink&) = delete;
    buffered_log_sink& operator=(const buffered_log_sink&) = delete;

    void log(const spdlog::details::log_msg& msg) override;
    void flush() override;
    void set_pattern(const std::string& pattern) override;
    void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override;

    // Lines dropped because the destination could not keep up, since the start.
    std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

private:
    void run_writer();
    void hand_over();  // the pending batch to the destination, in order; takes write_mutex_

    const std::shared_ptr<spdlog::sinks::sink> destination_;
    const limits limits_;
    std::unique_ptr<spdlog::formatter> formatter_;

    std::mutex mutex_;  // guards the four below
    std::condition_variable wake_;
    std::string pending_;
    bool urgent_ = false;
    bool stopping_ = false;

    std::mutex write_mutex_;  // one hand-over at a time, so batches arrive in order
    std::string spare_;       // the batch being handed over (keeps its capacity)
    std::uint64_t dropped_told_ = 0;
    std::atomic<std::uint64_t> dropped_{0};

    std::thread writer_;
};

}  // namespace voice_broker
