// ASCII case helpers for protocol text (header names, settings, file extensions).  Unlike
// ::tolower on a plain char, they are defined for every byte, 0x80-0xff included, and never
// depend on the locale.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace voice_broker {

constexpr char to_lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
constexpr char to_upper_ascii(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

inline std::string lower_ascii(std::string_view text) {
    std::string out(text);
    for (auto& c : out) c = to_lower_ascii(c);
    return out;
}

inline bool iequals_ascii(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return to_lower_ascii(x) == to_lower_ascii(y); });
}

}  // namespace voice_broker
