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
    // At shutdown, WebSockets close with 1012 (restart: the place lives on in the shared store and
    // the page reconnects elsewhere at once) instead of 1001 (going away: the session ended).
    bool restart_on_shutdown = false;

    server_context(config c, std::shared_ptr<router> r, std::shared_ptr<session_service> s, metrics& m)
        : settings(std::move(c)),
          headers(settings.openai.base_url),
          routes(std::move(r)),
          service(std::move(s)),
          counters(m),
          restart_on_shutdown(settings.store.kind != store_kind::memory) {}
};

}  // namespace voice_broker
