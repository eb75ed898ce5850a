#include "config_settings.hpp"

#include "voice_broker/ascii.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace voice_broker {

namespace {

std::optional<long long> parse_integer(const std::string& v) {
    long long out = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc{} || p != v.data() + v.size() || v.empty()) return std::nullopt;
    return out;
}

std::optional<double> parse_number(const std::string& v) {
    if (v.empty()) return std::nullopt;
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (end != v.c_str() + v.size() || !std::isfinite(d)) return std::nullopt;
    return d;
}

std::optional<std::string> bounded_int(const std::string& v, long long lo, long long hi, long long& out) {
    const auto n = parse_integer(v);
    if (!n || *n < lo || *n > hi) {
        return "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
    }
    out = *n;
    return std::nullopt;
}

template <class T>
std::optional<std::string> set_int(const std::string& v, long long lo, long long hi, T& target) {
    long long n = 0;
    if (auto err = bounded_int(v, lo, hi, n)) return err;
    target = static_cast<T>(n);
    return std::nullopt;
}

std::optional<std::string> set_seconds(const std::string& v, long long lo, long long hi, std::chrono::seconds& target) {
    long long n = 0;
    if (auto err = bounded_int(v, lo, hi, n)) return err;
    target = std::chrono::seconds{n};
    return std::nullopt;
}

std::optional<std::string> set_bool(const std::string& v, bool& target) {
    const std::string lower = lower_ascii(v);
    if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") target = true;
    else if (lower == "0" || lower == "false" || lower == "no" || lower == "off" || lower.empty()) target = false;
    else return "must be 1 or 0 (true or false)";
    return std::nullopt;
}

// "3,2,1" in some unit -> seconds, largest first.  Empty means no warnings.
std::optional<std::string> set_warning_list(const std::string& v, int unit_seconds,
                                            std::vector<std::chrono::seconds>& target) {
    std::vector<std::chrono::seconds> out;
    std::stringstream in(v);
    std::string item;
    while (std::getline(in, item, ',')) {
        item.erase(std::remove_if(item.begin(), item.end(), [](char ch) { return ch == ' ' || ch == '\t'; }), item.end());
        if (item.empty()) continue;
        const auto n = parse_number(item);
        if (!n || *n <= 0 || *n * unit_seconds > 24 * 3600) {
            return "must be a comma-separated list of positive numbers, like 3,2,1";
        }
        out.emplace_back(static_cast<long long>(std::llround(*n * unit_seconds)));
    }
    std::sort(out.begin(), out.end(), std::greater<>());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    target = std::move(out);
    return std::nullopt;
}

std::optional<std::string> set_budget(const std::string& v, double& target) {
    const auto n = parse_number(v);
    if (!n || *n < 0 || *n > 1'000'000) return "must be a number of dollars from 0 (no limit) to 1000000";
    target = *n;
    return std::nullopt;
}

constexpr const char* default_wrap_up_en =
    "The session is about to end. Finish your current thought in one or two short sentences, thank the visitor, "
    "and say goodbye in the language of the conversation. Do not start a new topic or ask a question.";
constexpr const char* default_wrap_up_ru =
    "Время разговора почти истекло. Коротко, в одном-двух предложениях, закончите мысль, поблагодарите "
    "собеседника и попрощайтесь. Не начинайте новую тему и не задавайте вопросов.";

}  // namespace

const std::vector<setting>& settings_table() {
    static const std::vector<setting> table = {
        {"HOST", "127.0.0.1", "Address to listen on (the Docker image sets 0.0.0.0)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return "must not be empty";
             if (v != "localhost" && !parse_ip(v)) return "must be an IP address such as 127.0.0.1, 0.0.0.0 or ::";
             c.host = v == "localhost" ? "127.0.0.1" : v;
             return std::nullopt;
         }},
        {"PORT", "3000", "TCP port; 0 picks a free port and logs it",
         [](config& c, const std::string& v) { return set_int(v, 0, 65535, c.port); }},
        {"STATIC_DIR", "static", "Folder with the page (index.html, app.js, ...)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return "must not be empty";
             c.static_dir = v;
             return std::nullopt;
         }},
        {"THREADS", "0", "I/O threads; 0 means one per CPU core",
         [](config& c, const std::string& v) { return set_int(v, 0, 256, c.threads); }},
        {"TLS_CERT_FILE", "", "PEM certificate chain; with TLS_KEY_FILE serves HTTPS (and redirects plain HTTP) on PORT",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             c.tls_cert_file = v;
             return std::nullopt;
         }},
        {"TLS_KEY_FILE", "", "PEM private key for TLS_CERT_FILE",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             c.tls_key_file = v;
             return std::nullopt;
         }},
        {"TLS_SELF_SIGNED", "0", "1: make a throwaway self-signed certificate at start-up (for trying HTTPS on a LAN)",
         [](config& c, const std::string& v) { return set_bool(v, c.tls_self_signed); }},
        {"LOG_LEVEL", "info", "trace, debug, info, warn, error or off",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             static const char* levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
             if (std::find(std::begin(levels), std::end(levels), v) == std::end(levels)) {
                 return "must be one of trace, debug, info, warn, error, off";
             }
             c.log_level = v;
             return std::nullopt;
         }},
        {"LOG_FORMAT", "text", "text (for people) or json (one object per line, for machines)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v == "text") c.log_style = log_format::text;
             else if (v == "json") c.log_style = log_format::json;
             else return "must be text or json";
             return std::nullopt;
         }},
        {"TRUSTED_PROXIES", "127.0.0.1,::1",
         "Addresses or CIDRs whose X-Forwarded-For and X-Forwarded-Proto are believed (empty: none)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             std::vector<ip_network> out;
             std::stringstream in(v);
             std::string item;
             while (std::getline(in, item, ',')) {
                 item.erase(std::remove_if(item.begin(), item.end(), [](char ch) { return ch == ' ' || ch == '\t'; }), item.end());
                 if (item.empty()) continue;
                 auto net = ip_network::parse(item);
                 if (!net) return "has '" + item + "', which is not an address or CIDR block";
                 out.push_back(*net);
             }
             c.trusted_proxies = std::move(out);
             return std::nullopt;
         }},
        {"SHUTDOWN_GRACE_SECONDS", "10", "On SIGTERM, how long in-flight requests may take to finish",
         [](config& c, const std::string& v) { return set_seconds(v, 0, 3600, c.shutdown_grace); }},
        {"MAX_CONNECTIONS", "10000", "Open connections at most (HTTP and WebSocket together)",
         [](config& c, const std::string& v) { return set_int(v, 1, 1000000, c.limits.max_connections); }},
        {"MAX_HEADER_BYTES", "8192", "Largest request header block (larger: 431)",
         [](config& c, const std::string& v) { return set_int(v, 1024, 1048576, c.limits.max_header_bytes); }},
        {"MAX_BODY_BYTES", "65536", "Largest request body (larger: 413)",
         [](config& c, const std::string& v) { return set_int(v, 1024, 16777216, c.limits.max_body_bytes); }},
        {"REQUEST_TIMEOUT_SECONDS", "10", "Time to receive one whole request, or to send a response",
         [](config& c, const std::string& v) { return set_seconds(v, 1, 3600, c.limits.request_timeout); }},
        {"IDLE_TIMEOUT_SECONDS", "30", "How long an idle keep-alive connection is kept",
         [](config& c, const std::string& v) { return set_seconds(v, 1, 3600, c.limits.idle_timeout); }},
        {"TLS_HANDSHAKE_TIMEOUT_SECONDS", "10", "Time allowed for a TLS handshake or shutdown",
         [](config& c, const std::string& v) { return set_seconds(v, 1, 600, c.limits.tls_handshake_timeout); }},
        {"WS_MAX_MESSAGE_BYTES", "4096", "Largest WebSocket message a client may send",
         [](config& c, const std::string& v) { return set_int(v, 64, 1048576, c.limits.ws_max_message_bytes); }},
        {"WS_SEND_QUEUE_LIMIT", "64", "Messages waiting for a slow WebSocket client before it is dropped",
         [](config& c, const std::string& v) { return set_int(v, 2, 100000, c.limits.ws_send_queue_limit); }},
        {"WS_IDLE_TIMEOUT_SECONDS", "30", "A WebSocket peer silent this long (pings unanswered) is dropped",
         [](config& c, const std::string& v) { return set_seconds(v, 2, 3600, c.limits.ws_idle_timeout); }},
        {"MAX_TICKETS_PER_ADDRESS", "4", "Live tickets (places) one address may hold; beyond it join answers 429 (0: no limit)",
         [](config& c, const std::string& v) { return set_int(v, 0, 1000000, c.fair_use.tickets_per_address); }},
        {"JOIN_RATE_PER_ADDRESS", "30", "Joins one address may make per minute; beyond it 429 with Retry-After (0: no limit)",
         [](config& c, const std::string& v) { return set_int(v, 0, 1000000, c.fair_use.joins_per_minute); }},
        {"MAX_CONNECTIONS_PER_ADDRESS", "256", "Open connections from one address that is not a trusted proxy (0: no limit)",
         [](config& c, const std::string& v) { return set_int(v, 0, 1000000, c.fair_use.connections_per_address); }},
        {"WS_CONNECTIONS_PER_TICKET", "4", "Live channels (WebSockets) one ticket may hold at once (0: no limit)",
         [](config& c, const std::string& v) { return set_int(v, 0, 1000, c.fair_use.channels_per_ticket); }},
        {"MAX_CONCURRENT_USERS", "1", "People who may talk at once (USER_LIMITS.MAX_CONCURRENT_USERS)",
         [](config& c, const std::string& v) { return set_int(v, 1, 10000, c.session.max_concurrent_users); }},
        {"MAX_SESSION_DURATION_MINUTES", "5", "Length of one session in minutes (SESSION_LIMITS.MAX_SESSION_DURATION_MINUTES)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             const auto n = parse_number(v);
             if (!n || *n <= 0 || *n > 24 * 60) return "must be a positive number of minutes, at most 1440";
             c.session.session_duration = std::chrono::seconds{std::max(1LL, std::llround(*n * 60))};
             return std::nullopt;
         }},
        {"SESSION_DURATION_SECONDS", "", "Overrides the session length in seconds (tests and demos)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return std::nullopt;
             return set_seconds(v, 1, 24 * 3600, c.session.session_duration);
         }},
        {"WARNING_MINUTES", "3,2,1", "Warn the talker this many minutes before the end",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             return set_warning_list(v, 60, c.session.warnings);
         }},
        {"WARNING_SECONDS", "", "Overrides the warnings in seconds, e.g. 3,2,1 (tests and demos)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return std::nullopt;
             return set_warning_list(v, 1, c.session.warnings);
         }},
        {"MAX_QUEUE_LENGTH", "50", "People who may wait at once; beyond it join answers 503 queue_full",
         [](config& c, const std::string& v) { return set_int(v, 0, 1000000, c.session.max_queue_length); }},
        {"HEARTBEAT_TIMEOUT_SECONDS", "30", "A visitor with no WebSocket and no heartbeat this long is dropped",
         [](config& c, const std::string& v) { return set_seconds(v, 1, 3600, c.session.heartbeat_timeout); }},
        {"ADMISSION_GRACE_SECONDS", "20", "Time a newly admitted visitor has to confirm before the slot passes on",
         [](config& c, const std::string& v) { return set_seconds(v, 1, 3600, c.session.admission_grace); }},
        {"COST_PER_MINUTE_USD", "0.06", "Price of one talking minute, for the stats' cost estimate",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             const auto n = parse_number(v);
             if (!n || *n < 0 || *n > 100) return "must be a number of dollars from 0 to 100";
             c.cost_per_minute_usd = *n;
             return std::nullopt;
         }},
        {"ADMIN_TOKEN", "", "Secret for forceEndAll (header x-admin-token); empty disables the admin API",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             c.admin_token = v;
             return std::nullopt;
         }},
        {"ADMIN_LOGIN_SECONDS", "900", "How long a console sign-in lasts after its last request",
         [](config& c, const std::string& v) { return set_seconds(v, 1, 86400, c.admin_login_lifetime); }},
        {"OPENAI_API_KEY", "", "OpenAI API key; empty: the page and queue work but no call can start",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             c.openai.api_key = v;
             return std::nullopt;
         }},
        {"OPENAI_BASE_URL", "https://api.openai.com", "OpenAI API origin (tests point it at a fake)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.rfind("https://", 0) != 0 && v.rfind("http://", 0) != 0) return "must start with https:// or http://";
             auto trimmed = v;
             while (trimmed.size() > 8 && trimmed.back() == '/') trimmed.pop_back();
             c.openai.base_url = trimmed;
             return std::nullopt;
         }},
        {"OPENAI_REALTIME_MODEL", "gpt-realtime", "Realtime model",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return "must not be empty";
             c.openai.model = v;
             return std::nullopt;
         }},
        {"OPENAI_VOICE", "marin", "Assistant voice",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return "must not be empty";
             c.openai.voice = v;
             return std::nullopt;
         }},
        {"OPENAI_INSTRUCTIONS", "You are a friendly voice assistant. Keep answers short.",
         "System instructions for the assistant",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             c.openai.instructions = v;
             return std::nullopt;
         }},
        {"OPENAI_TRANSCRIPTION_MODEL", "gpt-4o-mini-transcribe",
         "Model that transcribes the visitor for the page's transcript (empty: off)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             c.openai.transcription_model = v;
             return std::nullopt;
         }},
        {"OPENAI_TOKEN_TTL_SECONDS", "60", "Lifetime of an ephemeral key (clamped to the time left, 10..7200)",
         [](config& c, const std::string& v) { return set_seconds(v, 10, 7200, c.openai.token_ttl); }},
        {"OPENAI_TIMEOUT_SECONDS", "15", "Total time for one upstream request, retries included",
         [](config& c, const std::string& v) { return set_seconds(v, 1, 300, c.openai.timeout); }},
        {"OPENAI_CA_BUNDLE", "", "CA bundle for the upstream's certificate (empty: the system's)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             c.openai.ca_bundle = v;
             return std::nullopt;
         }},
        {"STATE_STORE", "memory", "memory (one instance) or redis (several instances sharing REDIS_URL)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v == "memory") c.store.kind = store_kind::memory;
             else if (v == "redis") c.store.kind = store_kind::redis;
             else return "must be memory or redis";
             return std::nullopt;
         }},
        {"REDIS_URL", "redis://127.0.0.1:6379/0", "redis://[:password@]host:port/db or unix:///path/redis.sock (STATE_STORE=redis)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.rfind("redis://", 0) != 0 && v.rfind("unix://", 0) != 0) return "must start with redis:// or unix://";
             c.store.redis_url = v;
             return std::nullopt;
         }},
        {"REDIS_KEY_PREFIX", "vb", "Prefix of every Redis key, so that two deployments can share one Redis",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty() || v.size() > 64 || v.find_first_of("{}: \t\r\n") != std::string::npos) {
                 return "must be 1-64 characters without braces, colons or spaces";
             }
             c.store.key_prefix = v;
             return std::nullopt;
         }},
        {"INSTANCE_ID", "", "This instance's name in logs, stats and metrics (default: hostname-pid)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.size() > 64 || v.find_first_of(" \t\r\n\"{}") != std::string::npos) return "must be at most 64 characters without spaces";
             c.store.instance_id = v;
             return std::nullopt;
         }},
        {"REDIS_SENTINELS", "", "host:port,host:port,...: find the Redis master through Sentinel (instead of REDIS_URL's host)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             c.store.sentinels = v;
             return std::nullopt;
         }},
        {"REDIS_SENTINEL_MASTER", "mymaster", "The master's name in Sentinel",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return "must not be empty";
             c.store.sentinel_master = v;
             return std::nullopt;
         }},
        {"REDIS_SENTINEL_PASSWORD", "", "Password of the sentinels (if they require one)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             c.store.sentinel_password = v;
             return std::nullopt;
         }},
        {"REDIS_WAIT_REPLICAS", "", "Replicas that must hold each admission, end and call before anyone is told (WAIT); empty: 1 with REDIS_SENTINELS, else 0",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) {
                 c.store.wait_replicas.reset();
                 return std::nullopt;
             }
             int n = 0;
             if (auto err = set_int(v, 0, 16, n)) return err;
             c.store.wait_replicas = n;
             return std::nullopt;
         }},
        {"REDIS_WAIT_TIMEOUT_MS", "50", "How long a write waits for those replicas; none in time: 503 store_unavailable, and the write is checked again",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             long long n = 0;
             if (auto err = bounded_int(v, 1, 5000, n)) return err;
             c.store.wait_timeout = std::chrono::milliseconds{n};
             return std::nullopt;
         }},
                {"DATA_DIR", "data", "Folder for what survives a restart in memory mode (waiting visitors, calls to hang up, the budget's spend)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return "must not be empty";
             c.store.data_dir = v;
             return std::nullopt;
         }},
        {"REALTIME_MODE", "token", "token (the browser gets a short-lived key) or relay (the server opens the call)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v == "token") c.openai.mode = realtime_mode::token;
             else if (v == "relay") c.openai.mode = realtime_mode::relay;
             else return "must be token or relay";
             return std::nullopt;
         }},
        {"OPENAI_MAX_OUTPUT_TOKENS", "", "Most output tokens of one response, 1..4096 (empty: the API's default, inf)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty() || v == "inf") {
                 c.openai.max_output_tokens.reset();
                 return std::nullopt;
             }
             int n = 0;
             if (auto err = set_int(v, 1, 4096, n)) return "must be empty (no limit) or " + err->substr(8);
             c.openai.max_output_tokens = n;
             return std::nullopt;
         }},
        // ---- the cost guard (docs/COST.md) ----
        {"SIDEBAND", "on", "on: watch every call over OpenAI's server-side WebSocket (real cost, wrap-up, silence); off: estimate only",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (set_bool(v, c.cost.sideband) || v.empty()) return "must be on or off";
             return std::nullopt;
         }},
        {"WRAP_UP_SECONDS", "30", "Seconds before the end at which the assistant is told to wrap up (0: never)",
         [](config& c, const std::string& v) { return set_seconds(v, 0, 3600, c.cost.wrap_up); }},
        {"WRAP_UP_INSTRUCTIONS", default_wrap_up_en, "What the assistant is told at WRAP_UP_SECONDS (English visitors)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return "must not be empty (set WRAP_UP_SECONDS=0 to turn the wrap-up off)";
             if (v.size() > 2000) return "must be at most 2000 characters";
             c.cost.wrap_up_instructions_en = v;
             return std::nullopt;
         }},
        {"WRAP_UP_INSTRUCTIONS_RU", default_wrap_up_ru, "The same for visitors whose page language is Russian",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return "must not be empty (set WRAP_UP_SECONDS=0 to turn the wrap-up off)";
             if (v.size() > 4000) return "must be at most 4000 bytes";
             c.cost.wrap_up_instructions_ru = v;
             return std::nullopt;
         }},
        {"SILENCE_TIMEOUT_SECONDS", "0", "End a session as idle when neither side spoke this long (0: never)",
         [](config& c, const std::string& v) { return set_seconds(v, 0, 24 * 3600, c.cost.silence_timeout); }},
        {"CALL_LOST_GRACE_SECONDS", "15", "After a call ends upstream, how long a page may open a new one before the session ends",
         [](config& c, const std::string& v) { return set_seconds(v, 0, 3600, c.cost.call_lost_grace); }},
        {"DAILY_BUDGET_USD", "0", "Most dollars to spend per day in BUDGET_TIMEZONE; then join answers budget_exhausted (0: no limit)",
         [](config& c, const std::string& v) { return set_budget(v, c.cost.daily_budget_usd); }},
        {"MONTHLY_BUDGET_USD", "0", "Most dollars to spend per calendar month in BUDGET_TIMEZONE (0: no limit)",
         [](config& c, const std::string& v) { return set_budget(v, c.cost.monthly_budget_usd); }},
        {"BUDGET_TIMEZONE", "UTC", "IANA time zone whose midnight and first of the month reset the budgets (Europe/Berlin)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v.empty()) return "must not be empty (UTC, or a zone like Europe/Berlin)";
             c.cost.budget_timezone = v;  // loaded (and checked) with the files
             return std::nullopt;
         }},
        {"QUOTA_PAUSE_SECONDS", "300",
         "After OpenAI answers insufficient_quota (out of credit), admit nobody for this long (0: do not pause)",
         [](config& c, const std::string& v) { return set_seconds(v, 0, 24 * 3600, c.cost.quota_pause); }},
    };
    return table;
}

const setting* find_setting(const std::string& name) {
    for (const auto& s : settings_table()) {
        if (name == s.name) return &s;
    }
    return nullptr;
}

}  // namespace voice_broker
