#include "visitor_channels.hpp"

#include "voice_broker/status_renderer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>

namespace voice_broker {

bool accepts_opening(live_channel& channel, store_error error, const channel_opening& opening,
                     std::chrono::seconds silence_timeout) {
    if (error != store_error::none) {
        channel.finish(live_channel::close_reason::restart);
        return false;
    }
    switch (opening.what) {
    case channel_opening::kind::unknown: channel.push(unknown_ticket_message(), false); break;
    case channel_opening::kind::ended: channel.push(ended_message(opening.status.reason, silence_timeout), false); break;
    case channel_opening::kind::opened: return true;
    }
    channel.finish(live_channel::close_reason::done);
    return false;
}

namespace {

shared_message shared_text(std::string text) { return std::make_shared<const std::string>(std::move(text)); }

shared_message error_message(const char* code, const std::string& message) {
    return shared_text(nlohmann::json{{"type", "error"}, {"error", {{"code", code}, {"message", message}}}}.dump());
}

}  // namespace

shared_message ended_message(end_reason why, std::chrono::seconds silence_timeout) {
    auto doc = nlohmann::json{{"type", "ended"}, {"reason", to_string(why)}};
    if (why == end_reason::idle) doc["silenceSeconds"] = silence_timeout.count();  // "no one spoke for N seconds"
    return shared_text(doc.dump());
}

shared_message warning_message(std::chrono::seconds warning, std::int64_t remaining_seconds, bool replay) {
    const auto secs = warning.count();
    auto doc = nlohmann::json{{"type", "warning"},
                              {"warningSeconds", secs},
                              {"minutesLeft", (secs + 59) / 60},
                              {"remainingSeconds", remaining_seconds}};
    if (replay) doc["replay"] = true;
    return shared_text(doc.dump());
}

shared_message unknown_ticket_message() {
    return error_message("unknown_ticket", "This ticket is unknown or has expired; join again.");
}

shared_message too_many_channels_message(std::size_t limit) {
    return error_message("too_many_channels",
                         "This ticket already has " + std::to_string(limit) + " live channels open; close a tab and reload.");
}

bool visitor_channels::add(channel_id id, std::uint64_t entry_id, const std::shared_ptr<live_channel>& channel) {
    auto& list = by_entry_[entry_id];
    if (per_entry_ != 0 && list.size() >= per_entry_) {
        if (list.empty()) by_entry_.erase(entry_id);
        channel->push(too_many_channels_message(per_entry_), false);
        channel->finish(live_channel::close_reason::done);
        return false;
    }
    list.push_back({id, channel, 0});
    entry_by_channel_.emplace(id, entry_id);
    return true;
}

std::optional<std::uint64_t> visitor_channels::remove(channel_id id) {
    const auto found = entry_by_channel_.find(id);
    if (found == entry_by_channel_.end()) {
        opening_.erase(id);
        return std::nullopt;
    }
    const auto entry_id = found->second;
    entry_by_channel_.erase(found);
    if (auto it = by_entry_.find(entry_id); it != by_entry_.end()) {
        std::erase_if(it->second, [id](const open_channel& c) { return c.id == id; });
        if (it->second.empty()) by_entry_.erase(it);
    }
    return entry_id;
}

std::optional<std::uint64_t> visitor_channels::entry_of(channel_id id) const {
    const auto found = entry_by_channel_.find(id);
    if (found == entry_by_channel_.end()) return std::nullopt;
    return found->second;
}

void visitor_channels::push_status(const entry_status& s, const status_renderer& renderer) {
    const auto it = by_entry_.find(s.entry_id);
    if (it == by_entry_.end()) return;
    push_if_changed(it->second, renderer.push(s));
}

void visitor_channels::push_if_changed(std::vector<open_channel>& channels, const std::string& doc) {
    const auto digest = std::hash<std::string>{}(doc);
    shared_message msg;  // made once, for the first channel that needs it
    for (auto& c : channels) {
        if (c.last_status == digest) continue;
        c.last_status = digest;
        if (!msg) msg = shared_text(doc);
        c.channel->push(msg, true);
    }
}

void visitor_channels::push(std::uint64_t entry_id, const shared_message& msg) {
    const auto it = by_entry_.find(entry_id);
    if (it == by_entry_.end()) return;
    for (auto& c : it->second) c.channel->push(msg, false);
}

std::size_t visitor_channels::end(std::uint64_t entry_id, const shared_message& msg) {
    const auto it = by_entry_.find(entry_id);
    if (it == by_entry_.end()) return 0;
    const auto ended = it->second.size();
    for (auto& c : it->second) {
        c.channel->push(msg, false);
        c.channel->finish(live_channel::close_reason::done);
        entry_by_channel_.erase(c.id);
    }
    by_entry_.erase(it);
    return ended;
}

void visitor_channels::close_all(live_channel::close_reason why) {
    for (auto& [entry_id, list] : by_entry_) {
        for (auto& c : list) c.channel->finish(why);
    }
    by_entry_.clear();
    entry_by_channel_.clear();
}

std::vector<std::uint64_t> visitor_channels::entries() const {
    std::vector<std::uint64_t> out;
    out.reserve(by_entry_.size());
    for (const auto& [entry_id, list] : by_entry_) out.push_back(entry_id);
    return out;
}

}  // namespace voice_broker
