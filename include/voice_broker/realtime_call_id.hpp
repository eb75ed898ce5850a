// realtime_call_id: the one check a Realtime call id passes before it goes into a URL (hang-up,
// sideband) or a registry, and the one way to read it from a Location header.
//
// The real API's ids look like rtc_u2_<22 alphanumerics> (a recorded answer in
// pydantic/pydantic-ai's test cassettes); the fake sends rtc_<32 hex>.  Accepted: "rtc_", then
// 1 to 124 of [A-Za-z0-9_-].  Nothing else can reach a path: no '/', '.', '?', '%' or '#'.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace voice_broker {

inline constexpr std::size_t max_call_id_length = 128;

bool is_valid_call_id(std::string_view id);

// The id at the end of a calls Location: "/v1/realtime/calls/rtc_x", an absolute URL, or either
// with a ?query or #fragment.  nullopt when there is none or it is not a valid id.
std::optional<std::string> call_id_from_location(std::string_view location);

}  // namespace voice_broker
