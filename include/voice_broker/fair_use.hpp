// fair_use: what one address (or one ticket) may hold or do, so that no single client can take
// every place, every connection or every slot's pushes.  One mechanism for every such limit:
// a keyed_quota counts what each key holds now against a cap (connections per address, live
// tickets per address, live channels per ticket), and a keyed_rate counts what each key did in
// the last window (joins per address per minute).  Behind trusted proxies the key is the
// forwarded address.  Both are thread-safe and bounded in memory: keys holding nothing are
// dropped, and a rate keeps at most `limit` instants per key.
#pragma once

#include "voice_broker/time.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace voice_broker {

// The fair-use settings, each 0 = no limit.
struct fair_use_limits {
    std::size_t tickets_per_address = 4;      // MAX_TICKETS_PER_ADDRESS
    std::size_t joins_per_minute = 30;        // JOIN_RATE_PER_ADDRESS
    std::size_t connections_per_address = 256;  // MAX_CONNECTIONS_PER_ADDRESS
    std::size_t channels_per_ticket = 4;      // WS_CONNECTIONS_PER_TICKET
};

class keyed_quota {
public:
    explicit keyed_quota(std::size_t limit = 0) : limit_(limit) {}

    void set_limit(std::size_t limit);
    // Takes one unit for `key`; false (and nothing taken) when the key already holds the limit.
    bool try_take(const std::string& key);
    void give_back(const std::string& key);
    std::size_t held(const std::string& key) const;
    std::size_t keys() const;

private:
    mutable std::mutex mutex_;
    std::size_t limit_;
    std::unordered_map<std::string, std::size_t> held_;
};

class keyed_rate {
public:
    keyed_rate(std::size_t limit = 0, std::chrono::seconds window = std::chrono::seconds{60}) : limit_(limit), window_(window) {}

    void set_limit(std::size_t limit);
    // Records one event for `key` at `now` and returns 0, or, when the key already had `limit`
    // events in the window, records nothing and returns the seconds until it may try again.
    std::int64_t take(const std::string& key, steady_time now);
    std::size_t keys() const;

private:
    void forget_idle(steady_time now);

    mutable std::mutex mutex_;
    std::size_t limit_;
    std::chrono::seconds window_;
    std::unordered_map<std::string, std::deque<steady_time>> events_;
    static constexpr std::size_t max_keys = 100000;
};

}  // namespace voice_broker
