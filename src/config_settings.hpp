// config_settings: the table of every setting (name, default, help, how to apply a value), used by
// the loader (config_loader.cpp) and by --help.  Private to those two files.
#pragma once

#include "voice_broker/config.hpp"

#include <optional>
#include <string>
#include <vector>

namespace voice_broker {

// Returns an explanation when the value is invalid.
using apply_fn = std::optional<std::string> (*)(config&, const std::string&);

struct setting {
    const char* name;
    const char* default_value;
    const char* help;
    apply_fn apply;
};

// In the order they are applied: a later entry (SESSION_DURATION_SECONDS) may override an
// earlier one (MAX_SESSION_DURATION_MINUTES).
const std::vector<setting>& settings_table();

const setting* find_setting(const std::string& name);

}  // namespace voice_broker
