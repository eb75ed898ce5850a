// session_service: the I/O shell around session_broker, and the broker's one owner.
//
// Every call is posted to one strand, where the broker lives.  After each change the service
// drains the broker's events: it pushes status, warnings and ends to the visitors' live
// channels, asks the upstream to hang up ended calls, updates metrics and usage, and re-arms
// one timer at the broker's next deadline.  Thread-safe: any thread may call it.
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/time.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace boost::asio {
class io_context;
}

namespace voice_broker {

class metrics;
class realtime_upstream;

// One visitor's live channel (a WebSocket).  push() and finish() may be called from any thread.
class live_channel {
public:
    virtual ~live_channel() = default;
    // `replaceable`: a status update that a newer one may replace if not yet sent.
    virtual void push(std::shared_ptr<const std::string> message, bool replaceable) = 0;
    // Close normally once what was pushed has been sent.
    virtual void finish() = 0;
};

class session_service : public std::enable_shared_from_this<session_service> {
public:
    static std::shared_ptr<session_service> create(boost::asio::io_context& ioc, const config& settings,
                                                   metrics& stats, std::shared_ptr<realtime_upstream> upstream);
    // The same with the service's notion of "now" read from `clock`, so that tests can move time
    // by hand.  Its timer still waits on the steady clock.
    static std::shared_ptr<session_service> create(boost::asio::io_context& ioc, const config& settings,
                                                   metrics& stats, std::shared_ptr<realtime_upstream> upstream,
                                                   std::function<steady_time()> clock);
    virtual ~session_service() = default;

    // /api/session?action=...; `respond` is called exactly once, on the service's strand.
    virtual void handle(http_request req, std::function<void(http_response)> respond) = 0;

    // The answer handle() would give a stats request (is_stats_request) right now, from a copy the
    // service published, when that copy is still fresh; nullopt otherwise (then call handle(),
    // which publishes a new one).  Any thread, no strand hop.  Fresh means: nothing that stats
    // shows has changed since, and the clock has reached neither the next whole second of uptime
    // nor the broker's next deadline; why that suffices is spelled out at stats_snapshot in
    // session_service.cpp.
    virtual std::optional<http_response> fresh_stats_answer() const { return std::nullopt; }

    // A WebSocket for `ticket` opened.  The channel receives the current status, or an error
    // and finish() when the ticket is unknown or over.
    virtual void open_channel(std::string ticket, std::shared_ptr<live_channel> channel) = 0;
    virtual void close_channel(std::string ticket, live_channel* channel) = 0;
    virtual void channel_heartbeat(std::string ticket) = 0;

    // SIGHUP: new limits for new sessions; nobody is dropped.
    virtual void reload(const config& settings) = 0;

    // Ends every session with reason "shutdown" (pushing it and hanging up calls), refuses new
    // joins, then calls `done`.
    virtual void shutdown(std::function<void()> done) = 0;
};

}  // namespace voice_broker
