// `voice-broker --healthcheck`: GET /api/health on the configured port, so the Docker image
// needs no curl binary.
#pragma once

#include "voice_broker/config.hpp"

#include <string>

namespace voice_broker {

// 0 when the server answers 200; `detail` says what was seen.
int run_healthcheck(const config& settings, std::string& detail);

}  // namespace voice_broker
