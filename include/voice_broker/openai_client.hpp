// openai_client: the realtime_upstream that talks to the OpenAI API over libcurl.  One worker
// thread drives a curl multi handle, so no I/O thread ever blocks on the network and
// connections to the upstream are reused.
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/realtime_upstream.hpp"

#include <memory>

namespace voice_broker {

class metrics;

std::shared_ptr<realtime_upstream> make_openai_client(const openai_settings& settings, metrics& stats);

}  // namespace voice_broker
