#include "voice_broker/buffered_log_sink.hpp"

#include <spdlog/common.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>

#include <string_view>

namespace voice_broker {

buffered_log_sink::buffered_log_sink(std::shared_ptr<spdlog::sinks::sink> destination, limits limits)
    : destination_(std::move(destination)), limits_(limits) {
    writer_ = std::thread([this] { run_writer(); });
}

buffered_log_sink::~buffered_log_sink() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
    hand_over();
}

void buffered_log_sink::log(const spdlog::details::log_msg& msg) {
    if (!should_log(msg.level)) return;
    spdlog::memory_buf_t line;
    if (formatter_) {
        formatter_->format(msg, line);
    } else {
        line.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
        line.push_back('\n');
    }
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        if (pending_.size() + line.size() > limits_.max_bytes) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        // The writer sleeps until a batch begins; then it waits `interval` unless told it is urgent.
        wake = pending_.empty();
        pending_.append(line.data(), line.size());
        if (!urgent_ && (msg.level >= spdlog::level::warn || pending_.size() >= limits_.batch_bytes)) {
            urgent_ = true;
            wake = true;
        }
    }
    if (wake) wake_.notify_one();
}

void buffered_log_sink::flush() { hand_over(); }

void buffered_log_sink::set_pattern(const std::string&) {
    // spdlog's pattern formatter caches the time it last formatted: not safe from several threads.
    throw spdlog::spdlog_ex("buffered_log_sink formats on the callers' threads: give it a formatter without mutable state");
}

void buffered_log_sink::set_formatter(std::unique_ptr<spdlog::formatter> formatter) { formatter_ = std::move(formatter); }

void buffered_log_sink::run_writer() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
        if (stopping_) return;  // the destructor hands over the rest
        wake_.wait_for(lock, limits_.interval, [&] { return stopping_ || urgent_; });
        lock.unlock();
        hand_over();
        lock.lock();
    }
}

void buffered_log_sink::hand_over() {
    std::lock_guard write(write_mutex_);
    {
        std::lock_guard lock(mutex_);
        spare_.swap(pending_);  // pending_ takes over spare_'s emptied capacity
        urgent_ = false;
    }
    if (const auto dropped = dropped_.load(std::memory_order_relaxed); dropped > dropped_told_) {
        const auto notice = std::to_string(dropped - dropped_told_) + " log line(s) dropped: the log output did not keep up";
        const spdlog::details::log_msg msg(spdlog::string_view_t{}, spdlog::level::warn, notice);
        spdlog::memory_buf_t line;
        if (formatter_) {
            formatter_->format(msg, line);
        } else {
            line.append(notice.data(), notice.data() + notice.size());
            line.push_back('\n');
        }
        spare_.append(line.data(), line.size());
        dropped_told_ = dropped;
    }
    if (spare_.empty()) return;
    try {
        const spdlog::details::log_msg batch(spdlog::string_view_t{}, spdlog::level::info,
                                             spdlog::string_view_t(spare_.data(), spare_.size()));
        destination_->log(batch);
        destination_->flush();
    } catch (const std::exception&) {
        // Nowhere left to say it: the destination is the log itself.
    }
    spare_.clear();
}

}  // namespace voice_broker
