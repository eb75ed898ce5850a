// config: every setting of voice-broker, and the one loader that fills it.
//
// Precedence, highest first: command-line flags > environment > .env.local > .env (both from the
// working directory, never overriding the real environment) > the config file
// (config/session-limits.json, or --config / CONFIG_FILE) > built-in defaults.
// Any invalid value stops start-up with one line naming the key.
#pragma once

#include "voice_broker/fair_use.hpp"
#include "voice_broker/ip_network.hpp"
#include "voice_broker/price_table.hpp"
#include "voice_broker/session_limits.hpp"
#include "voice_broker/time_zone.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace voice_broker {

enum class log_format { text, json };
enum class realtime_mode { token, relay };
enum class store_kind { memory, redis };

// Transport limits: one struct, every value explicit.
struct server_limits {
    std::size_t max_connections = 10000;
    std::size_t max_header_bytes = 8 * 1024;
    std::size_t max_body_bytes = 64 * 1024;  // an SDP offer is 4-10 KB
    std::chrono::seconds request_timeout{10};  // to receive one whole request, or write a response
    std::chrono::seconds idle_timeout{30};     // keep-alive wait for the next request
    std::chrono::seconds tls_handshake_timeout{10};
    std::size_t ws_max_message_bytes = 4096;
    std::size_t ws_send_queue_limit = 64;
    std::chrono::seconds ws_idle_timeout{30};  // pings at half of it; a silent peer is dropped
};

struct openai_settings {
    std::string api_key;  // secret: never logged or returned
    std::string base_url = "https://api.openai.com";
    std::string model = "gpt-realtime";
    std::string voice = "marin";
    std::string instructions;
    std::string transcription_model = "gpt-4o-mini-transcribe";  // empty: no input transcript
    std::chrono::seconds token_ttl{60};
    std::chrono::seconds timeout{15};
    std::string ca_bundle;
    realtime_mode mode = realtime_mode::token;
    std::optional<int> max_output_tokens;  // unset: "inf" (the API's default)
};

// The cost guard (docs/COST.md): the sideband, wrap-up, silence, lost calls, budgets.
struct cost_guard_settings {
    bool sideband = true;
    std::chrono::seconds wrap_up{30};  // before the end; 0: no wrap-up
    std::string wrap_up_instructions_en;
    std::string wrap_up_instructions_ru;
    std::chrono::seconds silence_timeout{0};  // 0: off
    std::chrono::seconds call_lost_grace{15};
    double daily_budget_usd = 0;    // 0: off
    double monthly_budget_usd = 0;  // 0: off
    std::string budget_timezone = "UTC";
    time_zone budget_zone = time_zone::utc();  // loaded from budget_timezone at start-up
    // The budget's record lives in store.data_dir (memory mode) or the store (redis mode).
    std::chrono::seconds quota_pause{300};
    price_table prices = price_table::defaults();  // + the config file's PRICES section
};

// Where the shared state lives (one instance in memory, or several sharing Redis).
struct store_settings {
    store_kind kind = store_kind::memory;
    std::string redis_url = "redis://127.0.0.1:6379/0";  // may hold a password: never logged whole
    std::string key_prefix = "vb";                       // keys are "{vb}:..." (one hash slot)
    std::string instance_id;                             // default: hostname-pid
    std::string sentinels;                               // host:port,...; set: ask Sentinel for the master
    std::string sentinel_master = "mymaster";
    std::string sentinel_password;                       // secret
    // Durable admissions: replicas that must acknowledge (WAIT) every write that admits, ends or
    // records a call before anyone is told.  Unset: 1 with Sentinel, 0 without.
    std::optional<int> wait_replicas;
    std::chrono::milliseconds wait_timeout{50};
    std::string data_dir;  // memory mode: what survives a restart (the loader sets it; empty: nothing)
};

struct config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 3000;
    std::string static_dir = "static";
    unsigned threads = 0;  // 0: one per core
    std::string tls_cert_file;
    std::string tls_key_file;
    bool tls_self_signed = false;
    std::string log_level = "info";
    log_format log_style = log_format::text;
    std::vector<ip_network> trusted_proxies;
    std::chrono::seconds shutdown_grace{10};
    server_limits limits;
    session_limits session;
    fair_use_limits fair_use;
    double cost_per_minute_usd = 0.06;
    std::string admin_token;  // secret; empty: admin API disabled
    std::chrono::seconds admin_login_lifetime{900};
    openai_settings openai;
    store_settings store;
    cost_guard_settings cost;
    std::string config_file;  // where the file layer came from, if any

    bool tls_enabled() const { return tls_self_signed || !tls_cert_file.empty(); }
    unsigned io_threads() const;
};

// What the command line asked for besides settings.
enum class run_action { serve, help, version, check_config, healthcheck };

struct load_request {
    std::vector<std::string> args;  // argv without the program name
    std::function<std::optional<std::string>(const std::string&)> getenv;
    std::string working_dir = ".";
};

struct load_result {
    run_action action = run_action::serve;
    config settings;
    std::vector<std::string> notes;  // harmless remarks worth logging at start-up
};

struct config_error {
    std::string message;  // one line, names the key
};

std::variant<load_result, config_error> load_config(const load_request& request);

// `voice-broker --help`: every setting with its default.
std::string help_text();

}  // namespace voice_broker
