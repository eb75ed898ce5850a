// Request ids: they only correlate log lines (and the X-Request-Id answer header), so they are
// unique, not secret.  A client's own X-Request-Id is kept when it is a plain token.
#pragma once

#include <string>
#include <string_view>

namespace voice_broker {

// 16 hex digits from a per-thread splitmix64 stream seeded once from OpenSSL: nanoseconds,
// where a call into the CSPRNG per request would cost microseconds.
void new_request_id(std::string& out);

// 1-64 characters of [A-Za-z0-9._-].
bool valid_request_id(std::string_view id);

}  // namespace voice_broker
