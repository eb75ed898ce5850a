#include "voice_broker/config.hpp"

#include "config_settings.hpp"
#include "voice_broker/ascii.hpp"
#include "voice_broker/env_file.hpp"
#include "voice_broker/file_io.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

namespace voice_broker {

namespace {

// --max-concurrent-users -> MAX_CONCURRENT_USERS
std::string flag_to_name(std::string flag) {
    std::string out;
    for (char ch : flag) out += ch == '-' ? '_' : to_upper_ascii(ch);
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

// The config file: setting names at the top level, or grouped in sections as the earlier
// product did (SESSION_LIMITS, USER_LIMITS, SERVER, OPENAI).
std::optional<config_error> read_config_file(const std::filesystem::path& path,
                                             std::map<std::string, layered_value>& layers, nlohmann::json& prices) {
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
        if (key == "PRICES") {  // per model, not settings: applied over the built-in price table
            prices = value;
            continue;
        }
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

namespace {

using layer_map = std::map<std::string, layered_value>;
using env_file_list = std::vector<std::pair<const char*, std::map<std::string, std::string>>>;

// The command line: actions, flags (the top layer), and the config file's path if named.
struct command_line {
    run_action action = run_action::serve;
    layer_map flags;
    std::optional<std::string> config_path;
};

std::variant<command_line, config_error> parse_command_line(const std::vector<std::string>& args) {
    command_line out;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& arg = args[i];
        if (arg == "--help" || arg == "-h") { out.action = run_action::help; continue; }
        if (arg == "--version" || arg == "-V") { out.action = run_action::version; continue; }
        if (arg == "--check-config") { out.action = run_action::check_config; continue; }
        if (arg == "--healthcheck") { out.action = run_action::healthcheck; continue; }
        if (arg == "--self-signed") { out.flags["TLS_SELF_SIGNED"] = {"1", "command line"}; continue; }
        // The stray word is not echoed: it may be a secret typed in the wrong place.
        if (arg.rfind("--", 0) != 0) {
            return config_error{"unexpected argument #" + std::to_string(i + 1) + ": not an --option (see --help)"};
        }
        std::string name = arg.substr(2);
        std::string value;
        if (const auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        } else if (i + 1 < args.size()) {
            value = args[++i];
        } else {
            return config_error{"option --" + name + " needs a value (see --help)"};
        }
        const auto key = flag_to_name(name);
        if (key == "CONFIG" || key == "CONFIG_FILE") {
            out.config_path = value;
            continue;
        }
        if (!find_setting(key)) return config_error{"unknown option --" + name + " (see --help)"};
        out.flags[key] = {value, "command line"};
    }
    return out;
}

// The config file layer: the one named (flag, environment, .env.local, .env), or the default
// config/session-limits.json.  A missing default is fine, a missing named file is an error.
std::optional<config_error> read_config_layer(const load_request& request, const command_line& cmd,
                                              const env_file_list& env_files, layer_map& layers, config& settings) {
    const std::filesystem::path cwd = request.working_dir;
    std::optional<std::string> named_file = cmd.config_path;
    if (!named_file) named_file = request.getenv("CONFIG_FILE");
    for (auto it = env_files.rbegin(); !named_file && it != env_files.rend(); ++it) {  // .env.local first
        if (auto found = it->second.find("CONFIG_FILE"); found != it->second.end()) named_file = found->second;
    }
    std::filesystem::path p = cwd / "config" / "session-limits.json";
    if (named_file && !named_file->empty()) {
        p = *named_file;
        if (p.is_relative()) p = cwd / p;
        std::error_code ec;  // a name too long for the file system is an answer, not an exception
        if (!std::filesystem::exists(p, ec)) return config_error{"config file " + p.string() + " does not exist"};
    } else if (std::error_code ec; !std::filesystem::exists(p, ec)) {
        return std::nullopt;
    }
    nlohmann::json prices;
    if (auto err = read_config_file(p, layers, prices)) return err;
    settings.config_file = p.string();
    if (!prices.is_null()) {
        if (auto why = settings.cost.prices.merge(prices)) return config_error{"invalid " + *why + " in config file " + p.string()};
    }
    return std::nullopt;
}

// Applies the table in order (the seconds-scale overrides come after the minute settings, so
// they win when set); the first invalid value stops, named with where it came from.
std::optional<config_error> apply_settings(const layer_map& layers, config& settings) {
    for (const auto& s : settings_table()) {
        const auto it = layers.find(s.name);
        const std::string value = it != layers.end() ? it->second.value : s.default_value;
        if (auto why = s.apply(settings, value)) {
            const std::string from = it != layers.end() ? " (from " + it->second.source + ")" : " (default)";
            const std::string_view name = s.name;
            const bool secret = name == "ADMIN_TOKEN" || name == "OPENAI_API_KEY" || name == "REDIS_URL" ||
                                name == "REDIS_SENTINEL_PASSWORD";
            return config_error{"invalid " + std::string(s.name) + (secret ? "" : "=" + value) + from + ": " + *why};
        }
    }
    return std::nullopt;
}

// Checks across settings, and files that must be readable; paths made absolute.
std::optional<config_error> check_files(const std::filesystem::path& cwd, config& c) {
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
    for (std::string* dir : {&c.static_dir, &c.store.data_dir}) {
        std::filesystem::path p = *dir;
        if (p.is_relative()) p = cwd / p;
        *dir = p.lexically_normal().string();
    }
    auto zone = time_zone::load(c.cost.budget_timezone, time_zone::default_zoneinfo_dir());
    if (auto* why = std::get_if<std::string>(&zone)) {
        return config_error{"invalid BUDGET_TIMEZONE=" + c.cost.budget_timezone + ": " + *why};
    }
    c.cost.budget_zone = std::get<time_zone>(std::move(zone));
    return std::nullopt;
}

void add_notes(const config& c, std::vector<std::string>& notes) {
    if (!c.admin_token.empty() && c.admin_token.size() < 16) {
        notes.push_back("ADMIN_TOKEN is shorter than 16 characters; use a long random value");
    }
    const double session_usd = c.cost_per_minute_usd * static_cast<double>(c.session.session_duration.count()) / 60.0;
    for (const auto& [name, budget] : {std::pair{"DAILY_BUDGET_USD", c.cost.daily_budget_usd},
                                       std::pair{"MONTHLY_BUDGET_USD", c.cost.monthly_budget_usd}}) {
        if (budget > 0 && budget < session_usd) {
            notes.push_back(std::string(name) + " is less than one full session at COST_PER_MINUTE_USD ($" +
                            std::to_string(session_usd) + "): nobody will be admitted");
        }
    }
    if (c.cost.wrap_up.count() > 0 && c.cost.wrap_up >= c.session.session_duration) {
        notes.push_back("WRAP_UP_SECONDS is not shorter than a session: the wrap-up comes as soon as the call is watched");
    }
    if (c.openai.api_key.empty()) {
        notes.push_back("OPENAI_API_KEY is not set: the page and the queue work, but no call can start "
                        "(set it in .env.local)");
    }
}

}  // namespace

std::variant<load_result, config_error> load_config(const load_request& request) {
    auto parsed = parse_command_line(request.args);
    if (auto* err = std::get_if<config_error>(&parsed)) return *err;
    auto& cmd = std::get<command_line>(parsed);
    load_result result;
    result.action = cmd.action;
    if (result.action == run_action::help || result.action == run_action::version) return result;

    const std::filesystem::path cwd = request.working_dir;
    // .env then .env.local, each read once: they may name the config file, and they are a layer.
    env_file_list env_files;
    for (const char* env_name : {".env", ".env.local"}) {
        if (auto text = read_file(cwd / env_name)) env_files.emplace_back(env_name, parse_env_file(*text));
    }
    layer_map layers;
    if (auto err = read_config_layer(request, cmd, env_files, layers, result.settings)) return *err;
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
    for (auto& [key, v] : cmd.flags) layers[key] = v;

    if (auto err = apply_settings(layers, result.settings)) return *err;
    if (auto err = check_files(cwd, result.settings)) return *err;
    add_notes(result.settings, result.notes);
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
