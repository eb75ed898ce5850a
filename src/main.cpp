// voice-broker: reads the settings, then runs the server until a signal stops it.
#include "voice_broker/config.hpp"
#include "voice_broker/env_file.hpp"
#include "voice_broker/healthcheck.hpp"
#include "voice_broker/logging.hpp"
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
        std::cout << "configuration is valid" << (result.settings.config_file.empty() ? "" : " (" + result.settings.config_file + ")")
                  << "\n";
        return 0;
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
    setup_logging(c.log_style, c.log_level, {c.openai.api_key, c.admin_token});
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
        return 1;
    }
    curl_global_cleanup();
    return 0;
}
