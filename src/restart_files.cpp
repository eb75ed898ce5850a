#include "restart_files.hpp"

#include "voice_broker/file_io.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace voice_broker {

using json = nlohmann::json;

namespace {

std::int64_t to_ms(wall_time t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(); }
wall_time from_ms(std::int64_t ms) { return wall_time{std::chrono::milliseconds{ms}}; }

// The document, or null (with a warning) when the file is there but not what was written.
json parse_or_warn(const std::optional<std::string>& text, const char* name) {
    if (!text) return nullptr;
    auto doc = json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        spdlog::warn("DATA_DIR: {} is not the JSON this server writes; ignoring it", name);
        return nullptr;
    }
    return doc;
}

}  // namespace

restart_files::restart_files(std::filesystem::path folder) : folder_(std::move(folder)) {
    if (!folder_.empty()) writer_ = std::thread([this] { run(); });
}

restart_files::~restart_files() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    if (writer_.joinable()) writer_.join();
}

void restart_files::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
        if (pending_.empty()) return;  // stopping, and everything is written
        auto batch = std::move(pending_);
        pending_.clear();
        auto done = std::move(on_written_);
        on_written_.clear();
        writing_ = true;
        lock.unlock();
        for (const auto& [name, text] : batch) {
            if (auto error = write_file_atomically(folder_ / name, text)) spdlog::error("DATA_DIR: {}", *error);
        }
        for (auto& f : done) f();
        lock.lock();
        writing_ = false;
        changed_.notify_all();
    }
}

void restart_files::flush() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return pending_.empty() && !writing_; });
}

std::optional<std::string> restart_files::read(const char* name) const {
    if (folder_.empty()) return std::nullopt;
    return read_file(folder_ / name);
}

void restart_files::write(const char* name, std::string text, std::function<void()> written) const {
    if (folder_.empty()) {
        if (written) written();
        return;
    }
    {
        std::lock_guard lock(mutex_);
        pending_[name] = std::move(text);
        if (written) on_written_.push_back(std::move(written));
    }
    changed_.notify_all();
}

operator_settings restart_files::load_operator() const {
    operator_settings out;
    const auto doc = parse_or_warn(read("operator.json"), "operator.json");
    if (doc.is_null()) return out;
    if (const auto users = doc.find("maxConcurrentUsers"); users != doc.end() && users->is_number_unsigned()) {
        out.max_concurrent_users = users->get<std::size_t>();
    }
    if (const auto secs = doc.find("sessionDurationSeconds"); secs != doc.end() && secs->is_number_unsigned()) {
        out.session_duration = std::chrono::seconds{secs->get<std::int64_t>()};
    }
    out.paused = doc.value("paused", false);
    return out;
}

void restart_files::save_operator(const operator_settings& settings) const {
    json doc = {{"paused", settings.paused}};
    if (settings.max_concurrent_users) doc["maxConcurrentUsers"] = *settings.max_concurrent_users;
    if (settings.session_duration) doc["sessionDurationSeconds"] = settings.session_duration->count();
    write("operator.json", doc.dump());
}

std::optional<saved_queue> restart_files::take_queue() const {
    const auto doc = parse_or_warn(read("queue.json"), "queue.json");
    if (!folder_.empty()) {
        std::error_code ec;
        std::filesystem::remove(folder_ / "queue.json", ec);
    }
    if (doc.is_null() || !doc.contains("tickets") || !doc["tickets"].is_array()) return std::nullopt;
    saved_queue out;
    out.saved_at = from_ms(doc.value("savedAtMs", std::int64_t{0}));
    for (const auto& t : doc["tickets"]) {
        if (t.is_string()) out.tickets.push_back(t.get<std::string>());
    }
    return out;
}

void restart_files::save_queue(const saved_queue& queue) const {
    write("queue.json", json{{"savedAtMs", to_ms(queue.saved_at)}, {"tickets", queue.tickets}}.dump());
}

std::vector<pending_call> restart_files::load_calls() const {
    std::vector<pending_call> out;
    const auto doc = parse_or_warn(read("calls.json"), "calls.json");
    if (doc.is_null() || !doc.contains("calls") || !doc["calls"].is_array()) return out;
    for (const auto& c : doc["calls"]) {
        if (!c.is_object() || !c.contains("callId") || !c["callId"].is_string()) continue;
        out.push_back({c["callId"].get<std::string>(), from_ms(c.value("hangUpAtMs", std::int64_t{0}))});
    }
    return out;
}

void restart_files::save_calls(const std::vector<pending_call>& calls, std::function<void()> written) const {
    auto list = json::array();
    for (const auto& c : calls) list.push_back({{"callId", c.call_id}, {"hangUpAtMs", to_ms(c.hang_up_at)}});
    write("calls.json", json{{"calls", list}}.dump(), std::move(written));
}

}  // namespace voice_broker
