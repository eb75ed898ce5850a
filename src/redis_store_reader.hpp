// redis_store_reader: the one checked way the Redis store reads what its script says.  Every
// answer of redis_store.lua and every event batch on "{prefix}events" is JSON that any client
// of that Redis could have written (a PUBLISH), or a script of another version (a rolling
// upgrade): nothing in it is trusted.  script_doc reads one JSON object field by field, each
// as the type the store needs and within bounds: times within 50 years of Redis's `now`,
// counts and positions at most MAX_QUEUE_LENGTH's largest value, ids present and positive.  A
// field that is missing where required, of another type, or out of bounds throws
// malformed_reply; the store turns that into store_error::unavailable for an answer, and into
// "drop the batch and read the state again" for a batch.  read_answer() and read_batch() read
// the parts every answer and batch share into typed values.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace voice_broker {

class malformed_reply : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One JSON object the script wrote, read against Redis's clock `now_ms`.
class script_doc {
public:
    static constexpr std::int64_t time_bound_ms = 50LL * 366 * 24 * 3600 * 1000;  // 50 years
    static constexpr std::uint64_t max_count = 1'000'000;                           // MAX_QUEUE_LENGTH's largest

    // Throws malformed_reply unless `object` is a JSON object.
    script_doc(const nlohmann::json& object, std::int64_t now_ms);

    std::int64_t now() const { return now_; }
    bool has(const char* key) const { return doc_->contains(key); }

    // Required fields.
    std::int64_t time(const char* key) const;
    std::uint64_t id(const char* key) const;
    script_doc object(const char* key) const;
    // Optional fields: the fallback when absent (never when present with another type).
    std::int64_t time_or(const char* key, std::int64_t fallback) const;
    std::int64_t deadline_or_none(const char* key) const;  // -1 (none) or a time; absent: -1
    std::size_t count_or(const char* key, std::size_t fallback) const;
    int small_or(const char* key, int fallback) const;     // flags and seconds, |n| <= 10^6
    bool flag_or(const char* key, bool fallback) const;
    std::uint64_t number_or(const char* key, std::uint64_t fallback) const;  // a counter (up to 2^53)
    std::string text_or(const char* key, const std::string& fallback) const;
    // Arrays (cjson writes an empty array as {}: read as empty); absent: empty.
    std::vector<std::string> texts(const char* key) const;
    std::vector<std::int64_t> times(const char* key) const;
    std::vector<std::uint64_t> counts(const char* key) const;
    std::vector<std::uint64_t> id_texts(const char* key) const;  // ids written as decimal strings
    // ZRANGE ... WITHSCORES with times as scores: id, time, id, time...
    std::vector<std::pair<std::uint64_t, std::int64_t>> id_times(const char* key) const;
    std::vector<script_doc> objects(const char* key) const;
    std::vector<std::vector<std::string>> text_lists(const char* key) const;

    const nlohmann::json& raw() const { return *doc_; }

private:
    const nlohmann::json* field(const char* key) const;  // nullptr when absent
    const nlohmann::json& array(const char* key) const;   // an empty array when absent or {}
    std::int64_t checked_time(const nlohmann::json& v, const char* key) const;
    std::uint64_t id_text(const nlohmann::json& v, const char* key) const;
    [[noreturn]] static void bad(const char* key, const char* why);

    const nlohmann::json* doc_;
    std::int64_t now_;
};

// The operator's rules shared through Redis: only what the operator set (the rest is config).
struct shared_rules {
    std::optional<std::size_t> users;
    std::optional<std::chrono::milliseconds> session;
    bool paused = false;
};

// Reads {"users":n,"session":ms,"paused":0|1} (a "cfg" event, or an answer's "cfg").
shared_rules read_rules(const script_doc& cfg);

// One event of a batch: what the mirror and the listener need of it.
struct store_event {
    enum class kind { queued, admitted, warning, ended, call, config, other };
    kind what = kind::other;
    std::uint64_t id = 0;
    std::int64_t started = 0, expires = 0, joined = 0;  // admitted (expires also: call)
    bool confirmed = false;                             // admitted
    int seconds_left = 0;                               // warning
    std::string reason;                                 // ended
    bool was_active = false;                            // ended
    std::string call;                                   // call
    shared_rules rules;                                 // config
};

// A batch: {"s":seq,"t":now,"by":instance,"nd":next deadline,"qc":0|1,"ev":[...]}.
struct event_batch {
    std::uint64_t seq = 0;
    std::int64_t t = 0;
    std::string by;
    std::int64_t next_deadline = -1;
    bool queue_changed = false;
    std::vector<store_event> events;
    nlohmann::json raw;  // as published (an instance publishes its durable batches itself)
};

// Whether a time since the epoch is believable as Redis's clock at all (before 2100).
bool plausible_redis_clock(std::int64_t ms);

// Reads a batch; its times within the bound of `reference_ms` (this instance's idea of Redis's
// clock, or nullopt before it has one: then of the batch's own "t").  Throws malformed_reply.
event_batch read_batch(const nlohmann::json& batch, std::optional<std::int64_t> reference_ms);

// What every answer of the script carries.
struct script_answer {
    nlohmann::json doc = nlohmann::json::object();  // the whole answer, for the operation's own fields
    std::int64_t now = 0;               // Redis's clock when the script ran
    std::int64_t next_deadline = -1;    // "nd"
    std::vector<std::string> hang_ups;  // "hang"
    std::optional<event_batch> batch;   // "batch"
    bool more = false;                  // "more" (advance)

    script_doc reader() const { return script_doc(doc, now); }
};

// Reads an answer's text.  Throws malformed_reply.
script_answer read_answer(const std::string& text);

}  // namespace voice_broker
