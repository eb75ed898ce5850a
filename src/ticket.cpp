#include "voice_broker/ticket.hpp"

#include "voice_broker/random_bytes.hpp"

#include <array>

namespace voice_broker {

namespace {
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

}  // namespace voice_broker
