// logging: spdlog set up for people (text) or machines (one JSON object per line).  The
// formatter also replaces any configured secret (API key, admin token) that would slip into a
// line with "[redacted]", as a last line of defence: the code never logs them on purpose.
// Lines are written in batches by a thread of their own (buffered_log_sink): an I/O thread that
// logs an access line never writes or flushes the output itself.
#pragma once

#include "voice_broker/config.hpp"

#include <cstdint>
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
// `sink` then receives whole batches of finished lines (its formatter is replaced by one that
// writes them as they are): at the latest 200 ms after a line, at once for a warning or worse.
void setup_logging(log_format style, const std::string& level, std::vector<std::string> secrets,
                   std::shared_ptr<spdlog::sinks::sink> sink = nullptr);

// Writes every line logged so far, now, on the calling thread: at exit, before a fast stop, and
// in tests that read the output.
void flush_logs();

// Lines dropped since setup_logging because the output did not keep up (a stalled pipe): the
// buffer never blocks a thread that logs (voice_broker_log_lines_dropped_total).
std::uint64_t log_lines_dropped();

// The value a log line may show in place of a query string: ticket values masked.
std::string redact_query(std::string_view target);

}  // namespace voice_broker
