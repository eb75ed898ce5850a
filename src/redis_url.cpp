#include "voice_broker/redis_url.hpp"

#include <charconv>
#include <limits>
#include <optional>

namespace voice_broker {

namespace {

constexpr std::string_view colon_hint = "write the password after a colon: redis://:password@host:6379/0 "
                                        "(or redis://user:password@host:6379/0)";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        if (i + 2 >= text.size()) return std::nullopt;
        const int high = hex_value(text[i + 1]);
        const int low = hex_value(text[i + 2]);
        if (high < 0 || low < 0) return std::nullopt;
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
    }
    return out;
}

std::optional<int> parse_database(std::string_view text) {
    int value = 0;
    if (text.empty()) return std::nullopt;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < 0) return std::nullopt;
    return value;
}

std::string_view strip_prefix(std::string_view text, std::string_view prefix) {
    return text.substr(prefix.size());
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != prefix[i]) return false;
    }
    return true;
}

// Splits "[[user]:password@]rest" at the last '@' (a password may contain '@', '/' or '?'
// unencoded; a host, path or database never does).
std::optional<std::string> take_credentials(std::string_view& text, redis_url& url) {
    const auto at = text.rfind('@');
    if (at == std::string_view::npos) return std::nullopt;
    const auto userinfo = text.substr(0, at);
    text.remove_prefix(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) return std::string(colon_hint);
    auto user = percent_decode(userinfo.substr(0, colon));
    auto password = percent_decode(userinfo.substr(colon + 1));
    if (!user || !password) return std::string("the user or password has a malformed %-escape");
    url.username = std::move(*user);
    url.password = std::move(*password);
    return std::nullopt;
}

// "db=N" (the only query parameter there is).
std::optional<std::string> take_query(std::string_view query, redis_url& url, bool database_from_path) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (item.empty()) continue;
        const auto eq = item.find('=');
        const auto key = item.substr(0, eq);
        if (key != "db" || eq == std::string_view::npos) {
            return "unknown query parameter '" + std::string(key) + "' (only db=N is understood)";
        }
        if (database_from_path) return std::string("the database is given twice (path and db=)");
        const auto db = parse_database(item.substr(eq + 1));
        if (!db) return std::string("db= must be a database number (0, 1, ...)");
        url.database = *db;
    }
    return std::nullopt;
}

}  // namespace

std::variant<redis_url, std::string> redis_url::parse(std::string_view text) {
    redis_url url;
    if (starts_with_ci(text, "rediss://")) {
        return std::string("rediss:// (TLS) is not supported: reach Redis over a private network with redis://, "
                           "or through a unix socket with unix:///path/redis.sock");
    }
    if (starts_with_ci(text, "unix://")) {
        auto rest = strip_prefix(text, "unix://");
        if (auto error = take_credentials(rest, url)) return *error;
        const auto question = rest.find('?');
        const auto path = rest.substr(0, question);
        if (path.empty() || path.front() != '/') {
            return std::string("a unix socket URL needs an absolute path: unix:///run/redis/redis.sock");
        }
        auto decoded = percent_decode(path);
        if (!decoded) return std::string("the socket path has a malformed %-escape");
        url.endpoint = redis_endpoint{{}, 0, std::move(*decoded)};
        if (question != std::string_view::npos) {
            if (auto error = take_query(rest.substr(question + 1), url, false)) return *error;
        }
        return url;
    }
    if (!starts_with_ci(text, "redis://")) {
        return std::string("must start with redis:// or unix:// (e.g. redis://127.0.0.1:6379/0)");
    }
    auto rest = strip_prefix(text, "redis://");
    if (auto error = take_credentials(rest, url)) return *error;
    const auto host_end = rest.find_first_of("/?");
    const auto host_port = rest.substr(0, host_end);
    if (host_port.empty()) return std::string("names no host (redis://host:6379/0)");
    auto endpoint = redis_endpoint::parse_host_port(host_port, 6379);
    if (!endpoint) {
        return "'" + std::string(host_port) + "' is not host[:port] (IPv6 in brackets: redis://[::1]:6379/0)";
    }
    url.endpoint = std::move(*endpoint);
    rest = host_end == std::string_view::npos ? std::string_view{} : rest.substr(host_end);
    bool database_from_path = false;
    if (!rest.empty() && rest.front() == '/') {
        const auto question = rest.find('?');
        const auto path = rest.substr(1, question == std::string_view::npos ? std::string_view::npos : question - 1);
        if (!path.empty()) {
            const auto db = parse_database(path);
            if (!db) return "'/" + std::string(path) + "' is not a database number (redis://host:6379/0)";
            url.database = *db;
            database_from_path = true;
        }
        rest = question == std::string_view::npos ? std::string_view{} : rest.substr(question);
    }
    if (!rest.empty()) {  // starts with '?'
        if (auto error = take_query(rest.substr(1), url, database_from_path)) return *error;
    }
    return url;
}

std::string redis_url::redacted() const {
    std::string credentials;
    if (!password.empty()) credentials = username + ":***@";
    else if (!username.empty()) credentials = username + ":@";
    if (endpoint.is_unix_socket()) {
        std::string text = "unix://" + credentials + endpoint.socket_path;
        if (database != 0) text += "?db=" + std::to_string(database);
        return text;
    }
    return "redis://" + credentials + endpoint.to_string() + "/" + std::to_string(database);
}

}  // namespace voice_broker
