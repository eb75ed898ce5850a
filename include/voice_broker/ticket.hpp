// Visitor tickets: who a visitor is.  128 random bits from OpenSSL's generator, written as 22
// characters of base64url without padding.  A ticket is a bearer secret: it is never logged.
#pragma once

#include <string>

namespace voice_broker {

std::string make_ticket();

}  // namespace voice_broker
