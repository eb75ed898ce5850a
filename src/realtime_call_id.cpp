#include "voice_broker/realtime_call_id.hpp"

namespace voice_broker {

bool is_valid_call_id(std::string_view id) {
    constexpr std::string_view prefix = "rtc_";
    if (id.size() <= prefix.size() || id.size() > max_call_id_length || id.substr(0, prefix.size()) != prefix) return false;
    for (char c : id.substr(prefix.size())) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

std::optional<std::string> call_id_from_location(std::string_view location) {
    // The fragment first (it may hold a '?'), then the query: neither is part of the path.
    if (const auto hash = location.find('#'); hash != std::string_view::npos) location = location.substr(0, hash);
    if (const auto query = location.find('?'); query != std::string_view::npos) location = location.substr(0, query);
    while (!location.empty() && (location.back() == ' ' || location.back() == '\t')) location.remove_suffix(1);
    while (!location.empty() && location.back() == '/') location.remove_suffix(1);
    const auto slash = location.rfind('/');
    if (slash == std::string_view::npos) return std::nullopt;
    // Only ids that sit under .../calls/ are call ids.
    const auto parent = location.substr(0, slash);
    constexpr std::string_view calls = "/calls";
    if (parent.size() < calls.size() || parent.substr(parent.size() - calls.size()) != calls) return std::nullopt;
    const auto id = location.substr(slash + 1);
    if (!is_valid_call_id(id)) return std::nullopt;
    return std::string(id);
}

}  // namespace voice_broker
