// The environment layers of the configuration: .env files and the process environment.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace voice_broker {

// KEY=VALUE lines of a .env file; comments, `export`, and single or double quotes handled.
std::map<std::string, std::string> parse_env_file(const std::string& text);

// Reads the real process environment.
std::optional<std::string> process_getenv(const std::string& name);

}  // namespace voice_broker
