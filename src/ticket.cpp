#include "voice_broker/ticket.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <stdexcept>

namespace voice_broker {

namespace {
void random_bytes(unsigned char* out, std::size_t n) {
    if (RAND_bytes(out, static_cast<int>(n)) != 1) throw std::runtime_error("OpenSSL's random generator failed");
}
constexpr char base64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}  // namespace

std::string make_ticket() {
    std::array<unsigned char, 16> raw{};
    random_bytes(raw.data(), raw.size());
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (auto byte : raw) {
        buffer = (buffer << 8) | byte;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += base64url[(buffer >> bits) & 0x3f];
        }
    }
    if (bits > 0) out += base64url[(buffer << (6 - bits)) & 0x3f];
    return out;  // 22 characters
}

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    random_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

bool secure_equals(std::string_view a, std::string_view b) {
    // Compare digests so that neither the content nor the length leaks through timing.
    std::array<unsigned char, SHA256_DIGEST_LENGTH> da{}, db{};
    SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da.data());
    SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db.data());
    return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

}  // namespace voice_broker
