// server_context: what every connection shares, owned by the server.  Sessions hold a
// shared_ptr to it, so it outlives the last connection.
#pragma once

#include "connection_registry.hpp"
#include "voice_broker/config.hpp"
#include "voice_broker/security_headers.hpp"

#include <atomic>
#include <memory>

namespace voice_broker {

class metrics;
class router;
class session_service;

struct server_context {
    config settings;
    security_headers headers;
    std::shared_ptr<router> routes;
    std::shared_ptr<session_service> service;
    metrics& counters;
    connection_registry registry;
    std::atomic<bool> shutting_down{false};

    server_context(config c, std::shared_ptr<router> r, std::shared_ptr<session_service> s, metrics& m)
        : settings(std::move(c)), headers(settings.openai.base_url), routes(std::move(r)), service(std::move(s)), counters(m) {}
};

}  // namespace voice_broker
