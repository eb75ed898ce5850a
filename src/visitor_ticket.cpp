#include "voice_broker/visitor_ticket.hpp"

namespace voice_broker {

std::optional<std::string> find_ticket(const http_request& req, ticket_sources where) {
    if (const auto h = req.header(ticket_header); !h.empty()) return std::string(h);
    if (auto c = req.cookie(ticket_cookie); c && !c->empty()) return c;
    if (where == ticket_sources::live_channel) {
        if (auto q = req.query_param("ticket"); q && !q->empty()) return q;
    }
    return std::nullopt;
}

std::string ticket_cookie_header(std::string_view ticket, bool secure, bool clear) {
    std::string out(ticket_cookie);
    out += '=';
    if (!clear) out += ticket;
    out += "; Path=/; HttpOnly; SameSite=Strict; Max-Age=";
    out += clear ? "0" : "86400";
    if (secure) out += "; Secure";
    return out;
}

}  // namespace voice_broker
