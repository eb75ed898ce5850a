// visitor_ticket: the one way to find who a visitor is.  A ticket comes, in this order, from the
// X-Session-Ticket header, the vb_ticket cookie, and, on the live channel only (a browser cannot
// set headers on a WebSocket), the ?ticket= query parameter.
#pragma once

#include "voice_broker/http_message.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace voice_broker {

inline constexpr std::string_view ticket_cookie = "vb_ticket";
inline constexpr std::string_view ticket_header = "x-session-ticket";

enum class ticket_sources {
    api,           // header, cookie
    live_channel,  // header, cookie, ?ticket=
};

// The visitor's ticket; nullopt when none is given (an empty value counts as none).
std::optional<std::string> find_ticket(const http_request& req, ticket_sources where);

// The Set-Cookie value that gives the page its ticket (or, with `clear`, takes it back).
std::string ticket_cookie_header(std::string_view ticket, bool secure, bool clear);

}  // namespace voice_broker
