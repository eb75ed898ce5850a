// Visitor tickets: 128 random bits from OpenSSL's generator, base64url without padding.
#pragma once

#include <string>
#include <string_view>

namespace voice_broker {

std::string make_ticket();

// 16 random bytes as 32 hex characters; for request ids and other non-secret ids.
std::string random_hex(std::size_t bytes);

// Constant-time equality for secrets (the admin token).
bool secure_equals(std::string_view a, std::string_view b);

}  // namespace voice_broker
