// session_service: the I/O shell around session_broker, and the broker's one owner.
//
// Any thread may call it.  Every call but fresh_stats_answer() is posted to one strand, where the
// broker lives; an exception there is caught at that boundary, so one visitor's request can
// never take the broker down for everyone.  After each change the service drains the broker's
// events: it pushes status, warnings and ends to the visitors' live channels, asks the upstream
// to hang up ended calls, updates metrics and usage, and re-arms one timer at the broker's next
// deadline.
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/responder.hpp"
#include "voice_broker/time.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace boost::asio {
class io_context;
class any_io_executor;
}  // namespace boost::asio

namespace voice_broker {

class admin_auth;
class metrics;
class realtime_upstream;
class session_store;
class sideband_client;

// One visitor's live channel (a WebSocket).  push() and finish() may be called from any thread.
class live_channel {
public:
    // How a channel closes: `done` (the session is over, or the server stops for good) or
    // `restart` (this instance restarts and the visitor's place lives on elsewhere: 1012, the
    // page reconnects at once) or `signed_out` (the console's login ended: 4401).
    enum class close_reason { done, restart, signed_out };

    virtual ~live_channel() = default;
    // `replaceable`: a status update that a newer one may replace if not yet sent.
    virtual void push(std::shared_ptr<const std::string> message, bool replaceable) = 0;
    // Close once what was pushed has been sent.
    virtual void finish(close_reason why) = 0;
};

// The service's name for one open live channel.
using channel_id = std::uint64_t;

// What a service is built with besides the settings; the defaults are production's.
struct service_options {
    // The service's notion of "now", so that tests can move time by hand (timers still wait on
    // the steady clock).
    std::function<steady_time()> clock;
    // How steady instants are shown as wall-clock times (default: anchored at start).
    std::optional<wall_clock_mapping> wall_clock;
    // A new visitor's ticket (make_ticket).
    std::function<std::string()> new_ticket;
    // Who may use the admin API (shared with the router; default: one made from the settings).
    std::shared_ptr<admin_auth> admin;
    // The shared state (default: a memory_store).  Called once, with the service's strand.
    std::function<std::unique_ptr<session_store>(const boost::asio::any_io_executor& strand,
                                                 std::function<steady_time()> clock)>
        make_store;
    // The calls' sidebands (the cost guard; docs/COST.md).  Null: calls are priced by the
    // per-minute estimate alone.  Its handlers are delivered on the service's strand.
    std::shared_ptr<sideband_client> sideband;
};

class session_service : public std::enable_shared_from_this<session_service> {
public:
    static std::shared_ptr<session_service> create(boost::asio::io_context& ioc, const config& settings,
                                                   metrics& counters, std::shared_ptr<realtime_upstream> upstream,
                                                   service_options options = {});
    virtual ~session_service() = default;

    // /api/session?action=...; answered through `respond`, on the service's strand.
    virtual void handle(http_request req, responder respond) = 0;
    // /api/admin/... (docs/API.md, "Admin API").
    virtual void handle_admin(http_request req, responder respond) = 0;

    // The answer handle() would give a stats request (is_stats_request) right now, from a copy the
    // service published, when that copy is still fresh; nullopt otherwise (then call handle(),
    // which publishes a new one).  Any thread, no strand hop.  Fresh means: nothing that stats
    // shows has changed since, and the clock has reached neither the next whole second of uptime
    // nor the broker's next deadline; why that suffices is spelled out at stats_snapshot in
    // session_service.cpp.
    virtual std::optional<http_response> fresh_stats_answer() const { return std::nullopt; }

    // A WebSocket for `ticket` opened.  Returns at once the id by which the channel is known from
    // now on.  The channel then receives the current status, or an error and finish() when the
    // ticket is unknown or over.
    virtual channel_id open_channel(std::string ticket, std::shared_ptr<live_channel> channel) = 0;
    // The operator's console opened its live view (login `login_id`, empty for the header token):
    // it receives the state document now and on every change.
    virtual channel_id open_admin_channel(std::string login_id, std::shared_ptr<live_channel> channel) = 0;
    // A message the visitor sent on the channel (heartbeats; anything else is ignored).
    virtual void channel_message(channel_id id, std::string text) = 0;
    virtual void close_channel(channel_id id) = 0;

    // SIGHUP: new limits for new sessions; nobody is dropped.
    virtual void reload(const config& settings) = 0;

    // Refuses new joins, then calls `done`.  `end_sessions`: ends every session with reason
    // "shutdown" (pushing it and hanging up calls), as a single instance must; otherwise every
    // live channel is closed for a restart and the sessions live on in the shared store.
    virtual void shutdown(bool end_sessions, std::function<void()> done) = 0;
};

}  // namespace voice_broker
