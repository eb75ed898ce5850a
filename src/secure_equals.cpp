#include "voice_broker/secure_equals.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>

namespace voice_broker {

bool secure_equals(std::string_view a, std::string_view b) {
    std::array<unsigned char, SHA256_DIGEST_LENGTH> da{}, db{};
    SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da.data());
    SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db.data());
    return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

}  // namespace voice_broker
