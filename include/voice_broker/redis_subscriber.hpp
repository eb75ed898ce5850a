// redis_subscriber: a connection in SUBSCRIBE mode that stays subscribed.  After every
// (re)connect it subscribes again to every channel and pattern, and once Redis has confirmed
// them all it calls the resync handler: messages published while it was away are lost (Redis
// pub/sub keeps nothing), so the owner must re-read whatever state the messages describe.
//
// An idle subscription proves every subscriber_probe_interval that the server still answers
// (see redis_client_options); a silent server is dropped and reconnected like a failed one.
//
// Threading as redis_connection: one executor, every call on it, every callback posted to it.
#pragma once

#include "voice_broker/redis_client_options.hpp"
#include "voice_broker/redis_endpoint.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

// Forward-declared to keep Asio out of this header; a caller passing a strand or an
// io_context's executor includes <boost/asio/any_io_executor.hpp> (net.hpp does) for the conversion.
namespace boost::asio {
class any_io_executor;
}

namespace voice_broker {

struct redis_message {
    std::string channel;
    std::string payload;
    std::string pattern;  // the PSUBSCRIBE pattern that matched; empty for a SUBSCRIBE channel
};

class redis_subscriber : public std::enable_shared_from_this<redis_subscriber> {
public:
    using message_handler = std::function<void(const redis_message&)>;
    using resync_handler = std::function<void()>;
    using state_observer = std::function<void(redis_link_state)>;

    static std::shared_ptr<redis_subscriber> create(const boost::asio::any_io_executor& executor,
                                                    redis_client_options options);
    ~redis_subscriber();
    redis_subscriber(const redis_subscriber&) = delete;
    redis_subscriber& operator=(const redis_subscriber&) = delete;

    // Set both before start().
    void on_message(message_handler handler);
    // After every (re)subscription is confirmed, the first one included: re-read the state.
    void on_resync(resync_handler handler);

    // Channels and patterns are kept across reconnects.  Subscribe to the initial set before
    // start(), so that the first resync covers it.
    void subscribe(std::string channel);
    void psubscribe(std::string pattern);
    void unsubscribe(const std::string& channel);
    void punsubscribe(const std::string& pattern);

    void start();
    void close();
    void reconnect();

    redis_link_state state() const;
    bool is_up() const { return state() == redis_link_state::up; }
    std::string last_error() const;
    std::optional<redis_endpoint> connected_endpoint() const;
    int add_state_observer(state_observer observer);
    void remove_state_observer(int id);

private:
    class impl;
    explicit redis_subscriber(std::shared_ptr<impl> state);
    std::shared_ptr<impl> impl_;
};

}  // namespace voice_broker
