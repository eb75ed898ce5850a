// visitor_channels: the visitors' open live channels (WebSockets), by entry, and what goes out on
// them.  The session service's bookkeeping of who is connected; it decides nothing about the
// session (the store does) and holds no lock (it lives on the service's strand).
//
// A status a channel already shows is not sent again (a join and a leave behind a waiting visitor
// end where they started); warnings and ends always go out.
#pragma once

#include "voice_broker/end_reason.hpp"
#include "voice_broker/session_broker.hpp"
#include "voice_broker/session_service.hpp"
#include "voice_broker/session_store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace voice_broker {

class status_renderer;

using shared_message = std::shared_ptr<const std::string>;

// The messages of the live channel (docs/API.md, "Live channel").
shared_message ended_message(end_reason why, std::chrono::seconds silence_timeout);
// A warning: `warning` names which (its offset before the end: the page shows each once),
// `remaining_seconds` is the time left as it goes out.  `replay`: sent again to a channel that
// opened after it fired (the first push may have found no channel: at least once, marked).
shared_message warning_message(std::chrono::seconds warning, std::int64_t remaining_seconds, bool replay);
shared_message unknown_ticket_message();
shared_message too_many_channels_message(std::size_t limit);

// What the store said of a channel that opens: false when it closes at once (the ticket is
// unknown or its session ended: the page is told; the store cannot tell: closed for a restart,
// the page comes back).
bool accepts_opening(live_channel& channel, store_error error, const channel_opening& opening,
                     std::chrono::seconds silence_timeout);

class visitor_channels {
public:
    // `per_entry`: WS_CONNECTIONS_PER_TICKET (0: no limit).
    explicit visitor_channels(std::size_t per_entry) : per_entry_(per_entry) {}

    // A channel opens in two steps: the store is asked about its ticket (`opening`), then its
    // answer comes (`opened`: false when the page closed the channel in between, and with the
    // Redis store the answer takes a round trip).  Such a channel must not be added: nothing
    // would ever remove it, and it would hold its connection for the life of the process.
    void opening(channel_id id) { opening_.insert(id); }
    bool opened(channel_id id) { return opening_.erase(id) > 0; }

    // False when the entry already has `per_entry` channels open: the channel is told so and
    // closed, and the caller gives the store its count back.
    bool add(channel_id id, std::uint64_t entry_id, const std::shared_ptr<live_channel>& channel);
    // The entry the channel belonged to, if it was still open here (a channel still opening is
    // forgotten: see `opened`).
    std::optional<std::uint64_t> remove(channel_id id);
    std::optional<std::uint64_t> entry_of(channel_id id) const;

    // Pushes `s` to the entry's channels, if it has any here, unless a channel already shows
    // exactly this document.  Rendered only when someone will get it (a broadcast walks the
    // whole queue).
    void push_status(const entry_status& s, const status_renderer& renderer);
    void push(std::uint64_t entry_id, const shared_message& msg);
    // The session is over: its channels get `msg` and close.  Returns how many there were: the
    // caller gives the store each one's count back (their closing will not: they are gone here).
    std::size_t end(std::uint64_t entry_id, const shared_message& msg);
    void close_all(live_channel::close_reason why);

    bool empty() const { return by_entry_.empty(); }
    std::vector<std::uint64_t> entries() const;
    void set_limit(std::size_t per_entry) { per_entry_ = per_entry; }

private:
    struct open_channel {
        channel_id id;
        std::shared_ptr<live_channel> channel;
        std::size_t last_status = 0;  // hash of the last status pushed
    };
    void push_if_changed(std::vector<open_channel>& channels, const std::string& doc);

    std::size_t per_entry_;
    std::unordered_map<std::uint64_t, std::vector<open_channel>> by_entry_;
    std::unordered_map<channel_id, std::uint64_t> entry_by_channel_;
    std::unordered_set<channel_id> opening_;
};

}  // namespace voice_broker
