// store_event_log: a store_listener that keeps every event it is told of, for the Redis store
// tests to ask what this instance would have pushed (and how often it read the state again).
#pragma once

#include "voice_broker/session_store.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace voice_broker::testing {

struct store_event_log final : store_listener {
    std::vector<broker_event> events;
    int resyncs = 0;

    void on_events(const std::vector<broker_event>& e, steady_time, bool) override { events.insert(events.end(), e.begin(), e.end()); }
    void on_hang_ups(std::vector<std::string>) override {}
    void on_resync() override { ++resyncs; }

    bool saw(broker_event::kind k, std::uint64_t id) const {
        return std::any_of(events.begin(), events.end(), [&](const broker_event& e) { return e.what == k && e.entry_id == id; });
    }
    std::size_t count(broker_event::kind k) const {
        return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [k](const broker_event& e) { return e.what == k; }));
    }
    std::optional<end_reason> ended(std::uint64_t id) const {
        for (const auto& e : events) {
            if (e.what == broker_event::kind::ended && e.entry_id == id) return e.reason;
        }
        return std::nullopt;
    }
};

}  // namespace voice_broker::testing
