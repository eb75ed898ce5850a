// sideband_client: the server-side WebSocket to a Realtime call (OpenAI's "sideband":
// GET /v1/realtime?call_id=rtc_... with the real key), one connection per call.
//
// Derived from OPENAI_BASE_URL: https gives wss (the certificate verified against
// OPENAI_CA_BUNDLE or the system store, SNI sent and the host name checked), http gives ws (the
// fake on loopback).  An HTTP proxy from the environment is used through CONNECT.  Each
// connection reports what it receives (parsed JSON events) and how it ended (exactly once) to
// its owner's callbacks, posted to the executor the owner names; it can send client events
// (bounded queue) and close.  When it fails it says so and affects nothing else.
//
// One client per process holds the TLS context (the CA store is loaded once); its connections
// run on the one-thread io_context it is given.  The Beast code lives in sideband_client.cpp
// only.
#pragma once

#include "voice_broker/call_monitor.hpp"  // sideband_end_info
#include "voice_broker/proxy_settings.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <variant>

namespace boost::asio {
class io_context;
}

namespace voice_broker {

struct sideband_settings {
    std::string base_url = "https://api.openai.com";  // OPENAI_BASE_URL
    std::string api_key;                              // secret: sent, never logged
    std::string ca_bundle;                            // empty: the system's CA store
    proxy_settings proxy;                             // proxy_settings::from_environment(...) in the server
    std::chrono::seconds connect_timeout{10};         // DNS, TCP, proxy, TLS and the upgrade together
    std::chrono::seconds idle_timeout{60};            // a silent peer (pings unanswered) is dropped
    std::size_t send_queue_limit = 64;                // client events waiting; beyond: the connection fails
    std::size_t max_message_bytes = 4 * 1024 * 1024;  // one server event (session.updated carries the instructions)
};

// From the config: OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_CA_BUNDLE; `proxy` from the
// environment (proxy_settings::from_environment).
sideband_settings make_sideband_settings(const config& c, proxy_settings proxy);

// One call's sideband.  Any thread may call send() and close().
class sideband_connection {
public:
    virtual ~sideband_connection() = default;
    // Queues one client event (JSON text).  False when the connection has ended or its queue is
    // full (then it ends, reported as failed).  Events sent before the upgrade completes wait.
    virtual bool send(std::string text) = 0;
    // Closes with 1000.  on_end still comes, once, with what happened.
    virtual void close() = 0;
};

struct sideband_handlers {
    std::function<void()> on_open;                           // the upgrade succeeded
    std::function<void(nlohmann::json event)> on_event;      // one server event, in order
    std::function<void(sideband_end_info why)> on_end;       // exactly once, last
};

class sideband_client {
public:
    // Fails (the error, for the start-up log) when the base URL is not http(s) or the CA bundle
    // cannot be loaded.
    static std::variant<std::shared_ptr<sideband_client>, std::string> create(boost::asio::io_context& io,
                                                                              sideband_settings settings);
    virtual ~sideband_client() = default;

    // Starts connecting to the sideband of `call_id` (validated: an invalid id ends at once,
    // reported as failed).  Handlers run on `deliver_to` (e.g. the session service's strand).
    virtual std::shared_ptr<sideband_connection> open(const std::string& call_id, boost::asio::any_io_executor deliver_to,
                                                      sideband_handlers handlers) = 0;

    // "wss://host/v1/realtime?call_id=" without the id, for logs.
    virtual std::string endpoint() const = 0;
};

}  // namespace voice_broker
