// router: the one place that decides what a request gets.  Given a request as the connection
// read it, route() resolves who the client is and returns what to do: an answer (static files,
// health, metrics, errors, redirects, the stats copy while it is fresh), work for the session
// service (the rest of /api/session), or "open the live channel for this visitor".  The HTTP and
// WebSocket sessions only carry the decision out: they never look at paths, methods, Origin or
// tickets.  No socket, no Beast: tests drive it with plain requests (router_test.cpp).
#pragma once

#include "voice_broker/http_message.hpp"
#include "voice_broker/ip_network.hpp"
#include "voice_broker/time.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace voice_broker {

class admin_auth;
class metrics;
class session_service;
class static_files;

inline constexpr std::string_view live_channel_path = "/api/session/ws";
inline constexpr std::string_view admin_channel_path = "/api/admin/ws";

struct route_decision {
    enum class kind {
        respond,        // send `response`
        session_api,    // hand the request to the session service, which answers it
        admin_api,      // the same, for the operator's endpoints
        live_channel,   // accept the WebSocket upgrade for visitor `ticket`
        admin_channel,  // accept the console's WebSocket (login `login_id`, empty for the header token)
    };
    kind what = kind::respond;
    http_response response;
    bool close = false;      // respond: close the connection after the answer
    bool head_only = false;  // whoever answers: send the headers (and the length) only
    std::string ticket;      // live_channel
    std::string login_id;    // admin_channel
};

// Why a request could not be read; the session maps its parser's errors to these.
enum class read_failure { body_too_large, headers_too_large, malformed };

struct routing_settings {
    std::vector<ip_network> trusted_proxies;
    std::uint16_t public_port = 0;  // where https redirects point
};

class router {
public:
    router(routing_settings settings, std::shared_ptr<session_service> service, metrics& counters,
           std::shared_ptr<const static_files> files, std::shared_ptr<admin_auth> admin = nullptr);

    // Fills req.client_address, req.secure and req.request_id, and decides.
    route_decision route(http_request& req) const;

    // The answer to a request that could not be read (the connection closes after it);
    // `detail` says what was wrong with a malformed one.
    static http_response read_failure_answer(read_failure why, std::string_view detail = {});

    void replace_static_files(std::shared_ptr<const static_files> files) { files_.store(std::move(files)); }
    void set_shutting_down() { shutting_down_.store(true); }

    http_response health() const;

private:
    route_decision upgrade(const http_request& req) const;
    route_decision admin_upgrade(const http_request& req) const;
    route_decision plain(http_request& req) const;
    http_response https_redirect(const http_request& req) const;

    routing_settings settings_;
    std::shared_ptr<session_service> service_;
    metrics& metrics_;
    std::shared_ptr<admin_auth> admin_;
    std::atomic<std::shared_ptr<const static_files>> files_;
    std::atomic<bool> shutting_down_{false};
    steady_time started_at_;
};

}  // namespace voice_broker
