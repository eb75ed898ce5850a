// io_errors: the one place that knows which I/O errors are the ordinary ways a connection ends
// (the peer closed, a timeout we set, a cancellation we asked for), so that only the rest are
// worth a log line.
#pragma once

#include "voice_broker/net.hpp"

#include <cstdint>

namespace voice_broker {

bool is_ordinary_end(const error_code& ec);

// Logs `what` failing on connection `connection_id`: at debug for an ordinary end, info otherwise.
void log_io_error(const error_code& ec, const char* what, std::uint64_t connection_id);

}  // namespace voice_broker
