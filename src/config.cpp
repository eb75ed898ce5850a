#include "voice_broker/config.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace voice_broker {

namespace {

using apply_fn = std::optional<std::string> (*)(config&, const std::string&);

struct setting {
    const char* name;
    const char* default_value;
    const char* help;
    apply_fn apply;  // returns an explanation when the value is invalid
};

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
    std::string lower = v;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
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
        item.erase(std::remove_if(item.begin(), item.end(), ::isspace), item.end());
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
                 item.erase(std::remove_if(item.begin(), item.end(), ::isspace), item.end());
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
        {"REALTIME_MODE", "token", "token (the browser gets a short-lived key) or relay (the server opens the call)",
         [](config& c, const std::string& v) -> std::optional<std::string> {
             if (v == "token") c.openai.mode = realtime_mode::token;
             else if (v == "relay") c.openai.mode = realtime_mode::relay;
             else return "must be token or relay";
             return std::nullopt;
         }},
    };
    return table;
}

const setting* find_setting(const std::string& name) {
    for (const auto& s : settings_table()) {
        if (name == s.name) return &s;
    }
    return nullptr;
}

// --max-concurrent-users -> MAX_CONCURRENT_USERS
std::string flag_to_name(std::string flag) {
    std::string out;
    for (char ch : flag) out += ch == '-' ? '_' : static_cast<char>(::toupper(static_cast<unsigned char>(ch)));
    return out;
}

std::string json_scalar_text(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
    if (v.is_number_integer() || v.is_number_unsigned()) return std::to_string(v.get<long long>());
    if (v.is_number_float()) {
        std::ostringstream out;
        out << v.get<double>();
        return out.str();
    }
    if (v.is_array()) {
        std::string out;
        for (const auto& item : v) {
            if (!out.empty()) out += ',';
            out += json_scalar_text(item);
        }
        return out;
    }
    if (v.is_null()) return "";
    return v.dump();
}

struct layered_value {
    std::string value;
    std::string source;
};

std::optional<std::string> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// The config file: setting names at the top level, or grouped in sections as the earlier
// product did (SESSION_LIMITS, USER_LIMITS, SERVER, OPENAI).
std::optional<config_error> read_config_file(const std::filesystem::path& path,
                                             std::map<std::string, layered_value>& layers) {
    const auto text = read_file(path);
    if (!text) return config_error{"cannot read config file " + path.string()};
    nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false, true);
    if (doc.is_discarded() || !doc.is_object()) {
        return config_error{"config file " + path.string() + " is not a JSON object"};
    }
    const std::string source = "config file " + path.string();
    auto take = [&](const std::string& key, const nlohmann::json& value) -> std::optional<config_error> {
        if (!find_setting(key)) return config_error{"unknown key " + key + " in " + source};
        if (value.is_object()) return config_error{"invalid " + key + " in " + source + ": must not be an object"};
        layers[key] = {json_scalar_text(value), source};
        return std::nullopt;
    };
    for (const auto& [key, value] : doc.items()) {
        if (!key.empty() && key.front() == '$') continue;  // "$comment" and the like
        if (value.is_object()) {
            for (const auto& [inner, inner_value] : value.items()) {
                if (!inner.empty() && inner.front() == '$') continue;
                if (auto err = take(inner, inner_value)) return err;
            }
        } else if (auto err = take(key, value)) {
            return err;
        }
    }
    return std::nullopt;
}

}  // namespace

unsigned config::io_threads() const {
    if (threads > 0) return threads;
    return std::max(1u, std::thread::hardware_concurrency());
}

std::variant<load_result, config_error> load_config(const load_request& request) {
    load_result result;
    std::map<std::string, layered_value> flags;
    std::optional<std::string> config_path_flag;

    for (std::size_t i = 0; i < request.args.size(); ++i) {
        const auto& arg = request.args[i];
        if (arg == "--help" || arg == "-h") { result.action = run_action::help; continue; }
        if (arg == "--version" || arg == "-V") { result.action = run_action::version; continue; }
        if (arg == "--check-config") { result.action = run_action::check_config; continue; }
        if (arg == "--healthcheck") { result.action = run_action::healthcheck; continue; }
        if (arg == "--self-signed") { flags["TLS_SELF_SIGNED"] = {"1", "command line"}; continue; }
        // The stray word is not echoed: it may be a secret typed in the wrong place.
        if (arg.rfind("--", 0) != 0) {
            return config_error{"unexpected argument #" + std::to_string(i + 1) + ": not an --option (see --help)"};
        }
        std::string name = arg.substr(2);
        std::string value;
        if (const auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        } else if (i + 1 < request.args.size()) {
            value = request.args[++i];
        } else {
            return config_error{"option --" + name + " needs a value (see --help)"};
        }
        const auto key = flag_to_name(name);
        if (key == "CONFIG" || key == "CONFIG_FILE") {
            config_path_flag = value;
            continue;
        }
        if (!find_setting(key)) return config_error{"unknown option --" + name + " (see --help)"};
        flags[key] = {value, "command line"};
    }
    if (result.action == run_action::help || result.action == run_action::version) return result;

    const std::filesystem::path cwd = request.working_dir;
    std::map<std::string, layered_value> layers;

    // .env then .env.local, each read once: they may name the config file, and they are a layer.
    std::vector<std::pair<const char*, std::map<std::string, std::string>>> env_files;
    for (const char* env_name : {".env", ".env.local"}) {
        if (auto text = read_file(cwd / env_name)) env_files.emplace_back(env_name, parse_env_file(*text));
    }

    // The config file: a missing default is fine, a missing named file is an error.
    std::optional<std::string> named_file = config_path_flag;
    if (!named_file) named_file = request.getenv("CONFIG_FILE");
    for (auto it = env_files.rbegin(); !named_file && it != env_files.rend(); ++it) {  // .env.local first
        if (auto found = it->second.find("CONFIG_FILE"); found != it->second.end()) named_file = found->second;
    }
    if (named_file && !named_file->empty()) {
        std::filesystem::path p = *named_file;
        if (p.is_relative()) p = cwd / p;
        if (!std::filesystem::exists(p)) return config_error{"config file " + p.string() + " does not exist"};
        if (auto err = read_config_file(p, layers)) return *err;
        result.settings.config_file = p.string();
    } else {
        const auto p = cwd / "config" / "session-limits.json";
        if (std::filesystem::exists(p)) {
            if (auto err = read_config_file(p, layers)) return *err;
            result.settings.config_file = p.string();
        }
    }

    // .env, then .env.local over it; neither overrides the real environment.
    for (const auto& [env_name, vars] : env_files) {
        for (const auto& [key, value] : vars) {
            if (key == "CONFIG_FILE") continue;
            if (find_setting(key)) layers[key] = {value, env_name};
            else if (key.rfind("OPENAI_", 0) == 0 || key.rfind("MAX_", 0) == 0)
                result.notes.push_back("ignoring unknown setting " + key + " in " + env_name);
        }
    }
    for (const auto& s : settings_table()) {
        if (auto v = request.getenv(s.name)) layers[s.name] = {*v, "environment"};
    }
    for (auto& [key, v] : flags) layers[key] = v;

    // The table is applied in order: the seconds-scale overrides come after the minute
    // settings, so they win when set.
    auto apply = [&](const setting& s) -> std::optional<config_error> {
        const auto it = layers.find(s.name);
        const std::string value = it != layers.end() ? it->second.value : s.default_value;
        if (auto why = s.apply(result.settings, value)) {
            const std::string from = it != layers.end() ? " (from " + it->second.source + ")" : " (default)";
            const bool secret = std::string_view(s.name) == "ADMIN_TOKEN" || std::string_view(s.name) == "OPENAI_API_KEY";
            return config_error{"invalid " + std::string(s.name) + (secret ? "" : "=" + value) + from + ": " + *why};
        }
        return std::nullopt;
    };
    for (const auto& s : settings_table()) {
        if (auto err = apply(s)) return *err;
    }

    auto& c = result.settings;
    if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
        return config_error{"invalid TLS settings: set both TLS_CERT_FILE and TLS_KEY_FILE, or neither"};
    }
    for (std::string* file : {&c.tls_cert_file, &c.tls_key_file}) {
        if (file->empty()) continue;
        std::filesystem::path p = *file;
        if (p.is_relative()) p = cwd / p;
        if (!read_file(p)) {
            return config_error{std::string("invalid ") + (file == &c.tls_cert_file ? "TLS_CERT_FILE" : "TLS_KEY_FILE") +
                                "=" + *file + ": cannot read the file"};
        }
        *file = p.string();
    }
    if (!c.openai.ca_bundle.empty() && !read_file(c.openai.ca_bundle)) {
        return config_error{"invalid OPENAI_CA_BUNDLE=" + c.openai.ca_bundle + ": cannot read the file"};
    }
    {
        std::filesystem::path p = c.static_dir;
        if (p.is_relative()) p = cwd / p;
        c.static_dir = p.lexically_normal().string();
    }
    if (!c.admin_token.empty() && c.admin_token.size() < 16) {
        result.notes.push_back("ADMIN_TOKEN is shorter than 16 characters; use a long random value");
    }
    if (c.openai.api_key.empty()) {
        result.notes.push_back("OPENAI_API_KEY is not set: the page and the queue work, but no call can start "
                               "(set it in .env.local)");
    }
    return result;
}

std::string help_text() {
    std::ostringstream out;
    out << "voice-broker " << VOICE_BROKER_VERSION << " - a gatekeeper for browser voice sessions on the OpenAI Realtime API\n\n"
        << "Usage: voice-broker [--NAME VALUE | --NAME=VALUE]... [--config PATH] [--self-signed]\n"
        << "       voice-broker --check-config | --healthcheck | --help | --version\n\n"
        << "Every setting can be given as a flag (--max-concurrent-users 2), an environment variable\n"
        << "(MAX_CONCURRENT_USERS=2), a line in .env.local or .env, or a key in config/session-limits.json.\n"
        << "Precedence: flags > environment > .env.local > .env > config file > default.\n\n"
        << "Actions:\n"
        << "  --check-config   validate the settings and exit 0, or 1 naming the bad key\n"
        << "  --healthcheck    GET /api/health on the configured port; exit 0 when healthy (for Docker)\n"
        << "  --config PATH    config file (default config/session-limits.json when present; also CONFIG_FILE)\n"
        << "  --self-signed    same as TLS_SELF_SIGNED=1\n\n"
        << "Settings (default in brackets):\n";
    for (const auto& s : settings_table()) {
        out << "  " << s.name;
        for (std::size_t pad = std::string_view(s.name).size(); pad < 30; ++pad) out << ' ';
        out << s.help << " [" << s.default_value << "]\n";
    }
    return out.str();
}

}  // namespace voice_broker
