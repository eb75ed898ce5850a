#include "voice_broker/time_zone.hpp"

#include "voice_broker/file_io.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>

namespace voice_broker {

namespace {

using std::chrono::days;
using std::chrono::seconds;

constexpr std::int64_t seconds_per_day = 86400;

bool is_utc_name(std::string_view name) {
    return name == "UTC" || name == "Etc/UTC" || name == "Z" || name == "Zulu" || name == "Etc/Zulu" ||
           name == "Universal" || name == "Etc/Universal";
}

// Letters, digits and "/_+-." in components that are neither "." nor "..": a zone name can never
// leave the zoneinfo folder.
bool is_safe_zone_name(std::string_view name) {
    if (name.empty() || name.size() > 128 || name.front() == '/') return false;
    std::size_t start = 0;
    while (start <= name.size()) {
        const auto slash = name.find('/', start);
        const auto part = name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
        if (part.empty() || part == "." || part == "..") return false;
        for (char c : part) {
            const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                            c == '+' || c == '-' || c == '.';
            if (!ok) return false;
        }
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return true;
}

class byte_reader {
public:
    explicit byte_reader(std::string_view bytes) : bytes_(bytes) {}
    bool has(std::size_t n) const { return pos_ <= bytes_.size() && bytes_.size() - pos_ >= n; }
    std::uint32_t u32() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<std::uint8_t>(bytes_[pos_++]);
        return v;
    }
    std::int64_t i64() {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(bytes_[pos_++]);
        return static_cast<std::int64_t>(v);
    }
    std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
    std::uint8_t u8() { return static_cast<std::uint8_t>(bytes_[pos_++]); }
    void skip(std::size_t n) { pos_ += n; }
    std::string_view rest() const { return pos_ < bytes_.size() ? bytes_.substr(pos_) : std::string_view{}; }

private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

struct tzif_header {
    char version = 0;
    std::uint32_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;
};

std::optional<tzif_header> read_header(byte_reader& in) {
    if (!in.has(44)) return std::nullopt;
    const auto magic = in.rest().substr(0, 4);
    if (magic != "TZif") return std::nullopt;
    in.skip(4);
    tzif_header h;
    h.version = static_cast<char>(in.u8());
    in.skip(15);
    h.isutcnt = in.u32();
    h.isstdcnt = in.u32();
    h.leapcnt = in.u32();
    h.timecnt = in.u32();
    h.typecnt = in.u32();
    h.charcnt = in.u32();
    constexpr std::uint32_t sane = 1u << 20;
    if (h.typecnt == 0 || h.typecnt > 256 || h.timecnt > sane || h.leapcnt > sane || h.charcnt > sane ||
        h.isutcnt > 256 || h.isstdcnt > 256) {
        return std::nullopt;
    }
    return h;
}

std::size_t data_block_size(const tzif_header& h, std::size_t time_size) {
    return h.timecnt * time_size + h.timecnt + h.typecnt * 6 + h.charcnt + h.leapcnt * (time_size + 4) + h.isstdcnt +
           h.isutcnt;
}

// ---- POSIX TZ strings ------------------------------------------------------------------

class posix_reader {
public:
    explicit posix_reader(std::string_view text) : text_(text) {}
    bool done() const { return pos_ >= text_.size(); }
    char peek() const { return done() ? '\0' : text_[pos_]; }
    bool take(char c) {
        if (peek() != c) return false;
        ++pos_;
        return true;
    }
    // A zone abbreviation: three or more letters, or <...> with letters, digits, + and -.
    bool name() {
        if (take('<')) {
            const auto close = text_.find('>', pos_);
            if (close == std::string_view::npos || close - pos_ < 3) return false;
            pos_ = close + 1;
            return true;
        }
        std::size_t n = 0;
        while (!done() && ((peek() >= 'A' && peek() <= 'Z') || (peek() >= 'a' && peek() <= 'z'))) {
            ++pos_;
            ++n;
        }
        return n >= 3;
    }
    bool number(int max_digits, int& out) {
        int n = 0;
        out = 0;
        while (!done() && peek() >= '0' && peek() <= '9' && n < max_digits) {
            out = out * 10 + (peek() - '0');
            ++pos_;
            ++n;
        }
        return n > 0;
    }
    // [+-]hh[:mm[:ss]] -> seconds (with its sign as written).
    bool clock(int max_hours, std::int32_t& out) {
        int sign = 1;
        if (take('-')) sign = -1;
        else take('+');
        int h = 0, m = 0, s = 0;
        if (!number(3, h) || h > max_hours) return false;
        if (take(':')) {
            if (!number(2, m) || m > 59) return false;
            if (take(':') && (!number(2, s) || s > 59)) return false;
        }
        out = sign * (h * 3600 + m * 60 + s);
        return true;
    }
    bool starts_clock() const { return peek() == '+' || peek() == '-' || (peek() >= '0' && peek() <= '9'); }

private:
    std::string_view text_;
    std::size_t pos_ = 0;
};

int days_in_month(int year, int month) {
    return static_cast<int>(static_cast<unsigned>(
        std::chrono::year_month_day_last{std::chrono::year{year} / std::chrono::month{static_cast<unsigned>(month)} /
                                         std::chrono::last}
            .day()));
}

bool is_leap(int year) { return std::chrono::year{year}.is_leap(); }

std::int64_t days_from_civil(int year, int month, int day) {
    const std::chrono::sys_days d = std::chrono::year{year} / std::chrono::month{static_cast<unsigned>(month)} /
                                    std::chrono::day{static_cast<unsigned>(day)};
    return d.time_since_epoch().count();
}

}  // namespace

time_zone time_zone::utc() {
    time_zone z;
    z.name_ = "UTC";
    z.types_.push_back({0, false});
    return z;
}

std::filesystem::path time_zone::default_zoneinfo_dir() {
    if (const char* dir = std::getenv("TZDIR"); dir != nullptr && *dir != '\0') return dir;
    return "/usr/share/zoneinfo";
}

std::variant<time_zone, std::string> time_zone::load(std::string_view name, const std::filesystem::path& zoneinfo_dir) {
    if (is_utc_name(name)) {
        auto z = utc();
        z.name_ = std::string(name);
        return z;
    }
    if (!is_safe_zone_name(name)) {
        return std::string("is not an IANA time zone name like Europe/Berlin or America/New_York");
    }
    const auto path = zoneinfo_dir / std::string(name);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        return "is not a time zone in " + zoneinfo_dir.string() + " (a typo, or the tzdata package is missing)";
    }
    const auto bytes = read_file(path);
    if (!bytes) return "cannot be read from " + path.string();
    return from_tzif(std::string(name), *bytes);
}

std::variant<time_zone, std::string> time_zone::from_tzif(std::string name, std::string_view bytes) {
    const std::string bad = "is not a valid TZif file";
    byte_reader in(bytes);
    auto header = read_header(in);
    if (!header) return bad;
    std::size_t time_size = 4;
    if (header->version >= '2') {
        const auto v1_size = data_block_size(*header, 4);
        if (!in.has(v1_size)) return bad;
        in.skip(v1_size);
        header = read_header(in);
        if (!header) return bad;
        time_size = 8;
    }
    const auto& h = *header;
    if (!in.has(data_block_size(h, time_size))) return bad;

    time_zone z;
    z.name_ = std::move(name);
    z.transitions_.reserve(h.timecnt);
    for (std::uint32_t i = 0; i < h.timecnt; ++i) z.transitions_.push_back(time_size == 8 ? in.i64() : in.i32());
    for (std::uint32_t i = 0; i < h.timecnt; ++i) {
        const auto type = in.u8();
        if (type >= h.typecnt) return bad;
        z.transition_types_.push_back(type);
    }
    if (!std::is_sorted(z.transitions_.begin(), z.transitions_.end())) return bad;
    for (std::uint32_t i = 0; i < h.typecnt; ++i) {
        local_type t;
        t.offset = in.i32();
        t.is_dst = in.u8() != 0;
        in.skip(1);  // abbreviation index
        if (t.offset <= -26 * 3600 || t.offset >= 26 * 3600) return bad;
        z.types_.push_back(t);
    }
    in.skip(h.charcnt + h.leapcnt * (time_size + 4) + h.isstdcnt + h.isutcnt);

    if (time_size == 8) {  // the footer: "\n<POSIX TZ string>\n"
        const auto rest = in.rest();
        if (rest.size() >= 2 && rest.front() == '\n') {
            const auto end = rest.find('\n', 1);
            if (end == std::string_view::npos) return bad;
            const auto rule_text = rest.substr(1, end - 1);
            if (!rule_text.empty()) {
                z.rule_ = parse_posix(rule_text);
                if (!z.rule_) return std::string("has a TZ rule this program cannot read: ") + std::string(rule_text);
            }
        }
    }
    return z;
}

std::optional<time_zone::posix_rule> time_zone::parse_posix(std::string_view text) {
    posix_reader in(text);
    posix_rule r;
    std::int32_t west = 0;
    if (!in.name() || !in.clock(24, west)) return std::nullopt;
    r.std_offset = -west;
    if (in.done()) return r;
    if (!in.name()) return std::nullopt;
    r.has_dst = true;
    r.dst_offset = r.std_offset + 3600;
    if (in.starts_clock()) {
        if (!in.clock(24, west)) return std::nullopt;
        r.dst_offset = -west;
    }
    auto date = [&in](rule_date& d) {
        if (in.take('M')) {
            d.form = rule_date::kind::month_week_day;
            if (!in.number(2, d.month) || d.month < 1 || d.month > 12 || !in.take('.')) return false;
            if (!in.number(1, d.week) || d.week < 1 || d.week > 5 || !in.take('.')) return false;
            if (!in.number(1, d.day) || d.day > 6) return false;
        } else if (in.take('J')) {
            d.form = rule_date::kind::julian_no_leap;
            if (!in.number(3, d.day) || d.day < 1 || d.day > 365) return false;
        } else {
            d.form = rule_date::kind::zero_based_day;
            if (!in.number(3, d.day) || d.day > 365) return false;
        }
        d.time = 7200;
        if (in.take('/') && !in.clock(167, d.time)) return false;
        return true;
    };
    if (in.done()) {  // POSIX's default: the US rules
        r.start = {rule_date::kind::month_week_day, 0, 3, 2, 7200};
        r.end = {rule_date::kind::month_week_day, 0, 11, 1, 7200};
        return r;
    }
    if (!in.take(',') || !date(r.start) || !in.take(',') || !date(r.end) || !in.done()) return std::nullopt;
    return r;
}

std::pair<sys_seconds, sys_seconds> time_zone::rule_transitions(int year) const {
    auto local_day = [year](const rule_date& d) -> std::int64_t {
        switch (d.form) {
        case rule_date::kind::julian_no_leap: {
            int doy = d.day;  // 1..365, February 29 never counted
            if (is_leap(year) && doy >= 60) ++doy;
            return days_from_civil(year, 1, 1) + doy - 1;
        }
        case rule_date::kind::zero_based_day:
            return days_from_civil(year, 1, 1) + d.day;
        case rule_date::kind::month_week_day:
            break;
        }
        const auto first = days_from_civil(year, d.month, 1);
        const auto first_weekday = static_cast<int>((first % 7 + 7 + 4) % 7);  // 1970-01-01 was a Thursday
        int day = 1 + (d.day - first_weekday + 7) % 7 + (d.week - 1) * 7;
        while (day > days_in_month(year, d.month)) day -= 7;
        return first + day - 1;
    };
    const auto& r = *rule_;
    const sys_seconds start{seconds{local_day(r.start) * seconds_per_day + r.start.time - r.std_offset}};
    const sys_seconds end{seconds{local_day(r.end) * seconds_per_day + r.end.time - r.dst_offset}};
    return {start, end};
}

std::chrono::seconds time_zone::rule_offset_at(sys_seconds t) const {
    const auto& r = *rule_;
    if (!r.has_dst) return seconds{r.std_offset};
    const auto local_days = std::chrono::floor<days>(t + seconds{r.std_offset});
    const int year = static_cast<int>(std::chrono::year_month_day{local_days}.year());
    const auto [start, end] = rule_transitions(year);
    const bool dst = start < end ? (start <= t && t < end) : !(end <= t && t < start);
    return seconds{dst ? r.dst_offset : r.std_offset};
}

std::chrono::seconds time_zone::offset_at(sys_seconds t) const {
    const auto when = t.time_since_epoch().count();
    if (transitions_.empty()) return rule_ ? rule_offset_at(t) : seconds{types_.front().offset};
    if (when < transitions_.front()) return seconds{types_.front().offset};
    if (when >= transitions_.back() && rule_) return rule_offset_at(t);
    const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), when);
    const auto index = static_cast<std::size_t>(it - transitions_.begin()) - 1;
    return seconds{types_[transition_types_[index]].offset};
}

std::vector<std::pair<sys_seconds, std::chrono::seconds>> time_zone::changes_between(sys_seconds from,
                                                                                     sys_seconds to) const {
    std::vector<sys_seconds> candidates;
    for (const auto t : transitions_) {
        if (t > from.time_since_epoch().count() && t < to.time_since_epoch().count()) candidates.push_back(sys_seconds{seconds{t}});
    }
    if (rule_ && rule_->has_dst) {
        const int first_year = static_cast<int>(std::chrono::year_month_day{std::chrono::floor<days>(from)}.year()) - 1;
        for (int y = first_year; y <= first_year + 2; ++y) {
            const auto [start, end] = rule_transitions(y);
            for (const auto c : {start, end}) {
                if (c > from && c < to) candidates.push_back(c);
            }
        }
    }
    std::sort(candidates.begin(), candidates.end());
    std::vector<std::pair<sys_seconds, std::chrono::seconds>> out;
    auto current = offset_at(from);
    for (const auto c : candidates) {
        const auto offset = offset_at(c);
        if (offset != current) {
            out.emplace_back(c, offset);
            current = offset;
        }
    }
    return out;
}

sys_seconds time_zone::first_instant_at_or_after(local_seconds local) const {
    const sys_seconds as_utc{local.time_since_epoch()};
    const sys_seconds from = as_utc - days{2};
    const sys_seconds to = as_utc + days{2};
    // Pieces of constant offset: within one, local time runs with UTC, so the first instant at
    // or after `local` is either the piece's start or local - offset.
    sys_seconds piece_start = from;
    auto offset = offset_at(from);
    const auto changes = changes_between(from, to);
    for (std::size_t i = 0; i <= changes.size(); ++i) {
        const sys_seconds piece_end = i < changes.size() ? changes[i].first : to;
        const sys_seconds candidate = std::max(piece_start, as_utc - offset);
        if (candidate < piece_end) return candidate;
        if (i < changes.size()) {
            piece_start = changes[i].first;
            offset = changes[i].second;
        }
    }
    return as_utc - offset_at(as_utc);
}

std::string time_zone::format_offset(std::chrono::seconds offset) {
    const auto total = offset.count();
    const auto magnitude = total < 0 ? -total : total;
    char buf[48];
    std::snprintf(buf, sizeof buf, "%c%02lld:%02lld", total < 0 ? '-' : '+', static_cast<long long>(magnitude / 3600),
                  static_cast<long long>((magnitude % 3600) / 60));
    return buf;
}

std::string time_zone::format_local(sys_seconds t) const {
    const auto offset = offset_at(t);
    const auto local = t + offset;
    const auto day = std::chrono::floor<std::chrono::days>(local);
    const std::chrono::year_month_day ymd{day};
    const std::chrono::hh_mm_ss<std::chrono::seconds> time{local - day};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<long long>(time.hours().count()), static_cast<long long>(time.minutes().count()),
                  static_cast<long long>(time.seconds().count()));
    return buf + format_offset(offset);
}

}  // namespace voice_broker
