// voice-broker: reads the settings, then runs the server until a signal stops it.
#include "voice_broker/config.hpp"
#include "voice_broker/env_file.hpp"
#include "voice_broker/healthcheck.hpp"
#include "voice_broker/logging.hpp"
#include "voice_broker/redis_probe.hpp"
#include "voice_broker/server.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

using namespace voice_broker;

namespace {
std::variant<load_result, config_error> load(const std::vector<std::string>& args) {
    return load_config({args, process_getenv, "."});
}

// --check-config: the settings are valid; with STATE_STORE=redis, Redis must answer too.
int check_config(const config& c) {
    if (c.store.kind == store_kind::redis) {
        auto url = redis_url::parse(c.store.redis_url);
        if (auto* err = std::get_if<std::string>(&url)) {
            std::cerr << "voice-broker: invalid REDIS_URL: " << *err << "\n";
            return 1;
        }
        std::optional<redis_sentinel_settings> sentinel;
        if (!c.store.sentinels.empty()) {
            auto list = parse_sentinel_list(c.store.sentinels);
            if (auto* err = std::get_if<std::string>(&list)) {
                std::cerr << "voice-broker: invalid REDIS_SENTINELS: " << *err << "\n";
                return 1;
            }
            sentinel = redis_sentinel_settings{};
            sentinel->sentinels = std::get<std::vector<redis_endpoint>>(list);
            sentinel->master_name = c.store.sentinel_master;
            sentinel->password = c.store.sentinel_password;
        }
        const auto probe = probe_redis(std::get<redis_url>(url), sentinel, std::chrono::milliseconds{2000});
        if (!probe.reachable) {
            std::cerr << "voice-broker: Redis is unreachable (STATE_STORE=redis): " << probe.detail << "\n";
            return 1;
        }
        std::cout << "redis: " << probe.detail << "\n";
    }
    std::cout << "configuration is valid" << (c.config_file.empty() ? "" : " (" + c.config_file + ")") << "\n";
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    // A write to a peer or pipe that has gone must fail with EPIPE, not kill the process: not
    // every writer can pass MSG_NOSIGNAL (libcurl with CURLOPT_NOSIGNAL and the OpenSSL inside
    // it, the log on stderr).  Before any thread starts, so every thread inherits it; as nginx does.
    std::signal(SIGPIPE, SIG_IGN);
    const std::vector<std::string> args(argv + 1, argv + argc);
    auto loaded = load(args);
    if (auto* err = std::get_if<config_error>(&loaded)) {
        std::cerr << "voice-broker: " << err->message << "\n";
        return 1;
    }
    auto& result = std::get<load_result>(loaded);
    switch (result.action) {
    case run_action::help:
        std::cout << help_text();
        return 0;
    case run_action::version:
        std::cout << "voice-broker " << VOICE_BROKER_VERSION << "\n";
        return 0;
    case run_action::check_config:
        return check_config(result.settings);
    case run_action::healthcheck: {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        std::string detail;
        const int rc = run_healthcheck(result.settings, detail);
        std::cout << (rc == 0 ? "healthy: " : "unhealthy: ") << detail << "\n";
        return rc;
    }
    case run_action::serve:
        break;
    }

    const auto& c = result.settings;
    std::vector<std::string> secrets{c.openai.api_key, c.admin_token, c.store.sentinel_password};
    if (auto url = redis_url::parse(c.store.redis_url); std::holds_alternative<redis_url>(url)) {
        secrets.push_back(std::get<redis_url>(url).password);
    }
    setup_logging(c.log_style, c.log_level, std::move(secrets));
    for (const auto& note : result.notes) spdlog::warn("{}", note);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    try {
        server_options options;
        options.handle_signals = true;
        options.reload_config = [args]() -> std::optional<config> {
            auto fresh = load(args);
            if (auto* err = std::get_if<config_error>(&fresh)) {
                spdlog::error("reload: {}; keeping the running settings", err->message);
                return std::nullopt;
            }
            return std::get<load_result>(fresh).settings;
        };
        server s(c, std::move(options));
        s.run();
    } catch (const std::exception& e) {
        spdlog::critical("cannot start: {}", e.what());
        flush_logs();
        return 1;
    }
    curl_global_cleanup();
    flush_logs();  // the lines of the shutdown, before the process ends
    return 0;
}
