// Constant-time equality for secrets (the admin token).
#pragma once

#include <string_view>

namespace voice_broker {

// Compares SHA-256 digests, so that neither the content nor the length leaks through timing.
bool secure_equals(std::string_view a, std::string_view b);

}  // namespace voice_broker
