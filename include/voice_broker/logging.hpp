// logging: spdlog set up for people (text) or machines (one JSON object per line).  The
// formatter also replaces any configured secret (API key, admin token) that would slip into a
// line with "[redacted]", as a last line of defence: the code never logs them on purpose.
#pragma once

#include "voice_broker/config.hpp"

#include <memory>
#include <string>
#include <vector>

namespace spdlog {
namespace sinks {
class sink;
}
}  // namespace spdlog

namespace voice_broker {

// Installs the default logger writing to stderr, or to `sink` when given (tests capture logs).
void setup_logging(log_format style, const std::string& level, std::vector<std::string> secrets,
                   std::shared_ptr<spdlog::sinks::sink> sink = nullptr);

// The value a log line may show in place of a query string: ticket values masked.
std::string redact_query(std::string_view target);

}  // namespace voice_broker
