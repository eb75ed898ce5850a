#include "voice_broker/request_id.hpp"

#include "voice_broker/random_bytes.hpp"

#include <algorithm>
#include <cstdint>

namespace voice_broker {

void new_request_id(std::string& out) {
    thread_local std::uint64_t state = [] {
        std::uint64_t seed = 0;
        unsigned char raw[8];
        random_bytes(raw, sizeof raw);
        for (auto b : raw) seed = (seed << 8) | b;
        return seed;
    }();
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    static constexpr char digits[] = "0123456789abcdef";
    out.assign(16, '0');
    for (int i = 15; i >= 0; --i, z >>= 4) out[static_cast<std::size_t>(i)] = digits[z & 15];
}

bool valid_request_id(std::string_view id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.';
    });
}

}  // namespace voice_broker
