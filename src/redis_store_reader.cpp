// redis_store_reader: reads the script's answers and batches field by field, each checked (see
// the header).  Nothing here indexes a JSON value it has not seen to exist with the right type.
#include "redis_store_reader.hpp"

#include <algorithm>
#include <string>

namespace voice_broker {

using json = nlohmann::json;

namespace {

constexpr std::int64_t latest_plausible_ms = 4'102'444'800'000;  // 2100-01-01 UTC

const json& empty_array() {
    static const json empty = json::array();
    return empty;
}

}  // namespace

bool plausible_redis_clock(std::int64_t ms) { return ms > 0 && ms < latest_plausible_ms; }

script_doc::script_doc(const json& object, std::int64_t now_ms) : doc_(&object), now_(now_ms) {
    if (!object.is_object()) throw malformed_reply("not a JSON object");
}

void script_doc::bad(const char* key, const char* why) { throw malformed_reply(std::string("\"") + key + "\" " + why); }

const json* script_doc::field(const char* key) const {
    const auto it = doc_->find(key);
    return it == doc_->end() ? nullptr : &*it;
}

const json& script_doc::array(const char* key) const {
    const auto* v = field(key);
    if (v == nullptr) return empty_array();
    if (v->is_array()) return *v;
    if (v->is_object() && v->empty()) return empty_array();  // cjson's empty table
    bad(key, "is not an array");
}

std::int64_t script_doc::checked_time(const json& v, const char* key) const {
    if (!v.is_number_integer()) bad(key, "is not a time in ms");
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) bad(key, "is out of range");
    const auto t = v.get<std::int64_t>();
    if (t < now_ - time_bound_ms || t > now_ + time_bound_ms) bad(key, "is too far from Redis's clock");
    return t;
}

std::uint64_t script_doc::id_text(const json& v, const char* key) const {
    if (!v.is_string()) bad(key, "holds an id that is not a string");
    const auto& t = v.get_ref<const std::string&>();
    if (t.empty() || t.size() > 19 || !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        bad(key, "holds an id that is not a number");
    }
    const auto id = std::stoull(t);  // at most 19 digits: fits
    if (id == 0) bad(key, "holds the id 0");
    return id;
}

std::int64_t script_doc::time(const char* key) const {
    const auto* v = field(key);
    if (v == nullptr) bad(key, "is missing");
    return checked_time(*v, key);
}

std::uint64_t script_doc::id(const char* key) const {
    const auto* v = field(key);
    if (v == nullptr || !v->is_number_unsigned() || v->get<std::uint64_t>() == 0) bad(key, "is not an entry id");
    return v->get<std::uint64_t>();
}

script_doc script_doc::object(const char* key) const {
    const auto* v = field(key);
    if (v == nullptr) bad(key, "is missing");
    return script_doc(*v, now_);
}

std::int64_t script_doc::time_or(const char* key, std::int64_t fallback) const {
    const auto* v = field(key);
    return v == nullptr ? fallback : checked_time(*v, key);
}

std::int64_t script_doc::deadline_or_none(const char* key) const {
    const auto* v = field(key);
    if (v == nullptr || (v->is_number_integer() && *v == -1)) return -1;
    return checked_time(*v, key);
}

std::size_t script_doc::count_or(const char* key, std::size_t fallback) const {
    const auto* v = field(key);
    if (v == nullptr) return fallback;
    if (!v->is_number_unsigned() || v->get<std::uint64_t>() > max_count) bad(key, "is not a count");
    return static_cast<std::size_t>(v->get<std::uint64_t>());
}

int script_doc::small_or(const char* key, int fallback) const {
    const auto* v = field(key);
    if (v == nullptr) return fallback;
    if (!v->is_number_integer()) bad(key, "is not an integer");
    const bool in_range = v->is_number_unsigned() ? v->get<std::uint64_t>() <= 1'000'000
                                                  : v->get<std::int64_t>() >= -1'000'000 && v->get<std::int64_t>() <= 1'000'000;
    if (!in_range) bad(key, "is out of range");
    return v->get<int>();
}

bool script_doc::flag_or(const char* key, bool fallback) const {
    const auto* v = field(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) bad(key, "is not a boolean");
    return v->get<bool>();
}

std::string script_doc::text_or(const char* key, const std::string& fallback) const {
    const auto* v = field(key);
    if (v == nullptr) return fallback;
    if (!v->is_string()) bad(key, "is not a string");
    return v->get<std::string>();
}

std::vector<std::string> script_doc::texts(const char* key) const {
    std::vector<std::string> out;
    for (const auto& v : array(key)) {
        if (!v.is_string()) bad(key, "holds something that is not a string");
        out.push_back(v.get<std::string>());
    }
    return out;
}

std::vector<std::int64_t> script_doc::times(const char* key) const {
    std::vector<std::int64_t> out;
    for (const auto& v : array(key)) out.push_back(v.is_number_integer() && v == 0 ? now_ : checked_time(v, key));  // 0: not known
    return out;
}

std::vector<std::uint64_t> script_doc::counts(const char* key) const {
    std::vector<std::uint64_t> out;
    for (const auto& v : array(key)) {
        if (!v.is_number_unsigned() || v.get<std::uint64_t>() > (std::uint64_t{1} << 53)) bad(key, "holds something that is not a count");
        out.push_back(v.get<std::uint64_t>());
    }
    return out;
}

std::uint64_t script_doc::number_or(const char* key, std::uint64_t fallback) const {
    const auto* v = field(key);
    if (v == nullptr) return fallback;
    if (!v->is_number_unsigned() || v->get<std::uint64_t>() > (std::uint64_t{1} << 53)) bad(key, "is not a number");
    return v->get<std::uint64_t>();
}

std::vector<std::uint64_t> script_doc::id_texts(const char* key) const {
    std::vector<std::uint64_t> out;
    for (const auto& v : array(key)) out.push_back(id_text(v, key));
    return out;
}

std::vector<std::pair<std::uint64_t, std::int64_t>> script_doc::id_times(const char* key) const {
    const auto& a = array(key);
    if (a.size() % 2 != 0) bad(key, "is not a list of ids and times");
    std::vector<std::pair<std::uint64_t, std::int64_t>> out;
    for (std::size_t i = 0; i < a.size(); i += 2) {
        const auto& score = a[i + 1];
        // Redis writes a score as a string; an integer is read as one too.
        std::int64_t t = 0;
        if (score.is_string()) {
            const auto& s = score.get_ref<const std::string&>();
            const bool digits = !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (!digits) bad(key, "holds a time that is not a number");
            t = checked_time(json(std::stoll(s)), key);
        } else {
            t = checked_time(score, key);
        }
        out.emplace_back(id_text(a[i], key), t);
    }
    return out;
}

std::vector<script_doc> script_doc::objects(const char* key) const {
    std::vector<script_doc> out;
    for (const auto& v : array(key)) out.emplace_back(v, now_);
    return out;
}

std::vector<std::vector<std::string>> script_doc::text_lists(const char* key) const {
    std::vector<std::vector<std::string>> out;
    for (const auto& list : array(key)) {
        auto& texts = out.emplace_back();
        if (list.is_object() && list.empty()) continue;  // cjson's empty table
        if (!list.is_array()) bad(key, "holds something that is not a list");
        for (const auto& v : list) {
            if (!v.is_string()) bad(key, "holds a list with something that is not a string");
            texts.push_back(v.get<std::string>());
        }
    }
    return out;
}

shared_rules read_rules(const script_doc& cfg) {
    shared_rules out;
    if (cfg.has("users")) out.users = cfg.count_or("users", 0);
    if (cfg.has("session")) {
        const auto session_ms = std::min<std::uint64_t>(cfg.number_or("session", 0), 366ULL * 24 * 3600 * 1000);
        out.session = std::chrono::milliseconds{static_cast<std::int64_t>(session_ms)};
    }
    out.paused = cfg.small_or("paused", 0) == 1;
    return out;
}

namespace {

store_event read_event(const script_doc& ev, std::int64_t t) {
    store_event out;
    const auto k = ev.text_or("k", "");
    if (k == "q+") out.what = store_event::kind::queued;
    else if (k == "adm") out.what = store_event::kind::admitted;
    else if (k == "warn") out.what = store_event::kind::warning;
    else if (k == "end") out.what = store_event::kind::ended;
    else if (k == "call") out.what = store_event::kind::call;
    else if (k == "cfg") out.what = store_event::kind::config;
    if (out.what == store_event::kind::other) return out;  // a newer script's event: not for this version
    if (out.what == store_event::kind::config) {
        out.rules = read_rules(ev);
        return out;
    }
    out.id = ev.id("id");
    out.started = ev.time_or("s", t);
    out.expires = ev.time_or("x", out.what == store_event::kind::call ? 0 : t);
    out.joined = std::min(ev.time_or("j", t), t);  // joined before this batch (a new master's clock may lag)
    out.confirmed = ev.small_or("c", 0) == 1;
    out.seconds_left = ev.small_or("left", 0);
    out.reason = ev.text_or("r", "left");
    out.was_active = ev.small_or("wa", 0) == 1;
    if (out.what == store_event::kind::ended) {  // "st" 0: the entry never started
        out.started = ev.has("st") && ev.raw().at("st") == 0 ? t : ev.time_or("st", t);
    }
    out.call = ev.text_or("call", "");
    if (out.what == store_event::kind::call && out.call.empty()) throw malformed_reply("a call event without a call");
    return out;
}

}  // namespace

event_batch read_batch(const json& batch, std::optional<std::int64_t> reference_ms) {
    if (!batch.is_object()) throw malformed_reply("a batch that is not a JSON object");
    const auto t_field = batch.find("t");
    if (t_field == batch.end() || !t_field->is_number_integer()) throw malformed_reply("a batch without a time");
    const auto own_t = t_field->get<std::int64_t>();
    if (!plausible_redis_clock(own_t)) throw malformed_reply("a batch whose time is not Redis's clock");
    const script_doc b(batch, reference_ms.value_or(own_t));
    event_batch out;
    out.t = b.time("t");
    const auto s = batch.find("s");
    if (s == batch.end() || !s->is_number_unsigned() || s->get<std::uint64_t>() == 0) throw malformed_reply("a batch without a number");
    out.seq = s->get<std::uint64_t>();
    out.by = b.text_or("by", "");
    out.next_deadline = b.deadline_or_none("nd");
    out.queue_changed = b.small_or("qc", 0) == 1;
    if (!b.has("ev")) throw malformed_reply("a batch without events");
    for (const auto& ev : b.objects("ev")) out.events.push_back(read_event(ev, out.t));
    out.raw = batch;
    return out;
}

script_answer read_answer(const std::string& text) {
    script_answer out;
    out.doc = json::parse(text, nullptr, false);
    if (out.doc.is_discarded() || !out.doc.is_object()) throw malformed_reply("not the script's JSON");
    const auto now = out.doc.find("now");
    if (now == out.doc.end() || !now->is_number_integer() || !plausible_redis_clock(now->get<std::int64_t>())) {
        throw malformed_reply("no believable \"now\"");
    }
    out.now = now->get<std::int64_t>();
    const auto r = out.reader();
    out.next_deadline = r.deadline_or_none("nd");
    out.hang_ups = r.texts("hang");
    out.more = r.flag_or("more", false);
    if (const auto b = out.doc.find("batch"); b != out.doc.end()) out.batch = read_batch(*b, out.now);
    return out;
}

}  // namespace voice_broker
