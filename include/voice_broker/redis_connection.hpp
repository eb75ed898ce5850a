// redis_connection: one connection to Redis for commands, with everything a caller should not
// have to think about: connect over TCP or a unix socket, AUTH and SELECT on every (re)connect,
// a queue of commands each with its own deadline, automatic reconnect with jittered exponential
// back-off, and an up/down state that observers can watch.  Built on hiredis's async API, driven
// by the caller's executor (hiredis stays out of this header).
//
// Threading: the object lives on the executor given to create() (a strand, or a single-threaded
// io_context: callbacks must not run concurrently).  Call every member function on it; every
// callback runs on it, posted (never inside the call that caused it).
//
// Guarantees: every command's handler runs exactly once, whatever happens (reply, deadline,
// lost connection, close(), destruction).  A command whose deadline passes after it was sent
// fails with redis_error::timeout, and since hiredis cannot cancel one command, the connection
// is dropped (the others in flight fail with connection_lost) and made again: a paused Redis
// never wedges the caller.  Replies arrive in the order the commands were issued.
#pragma once

#include "voice_broker/redis_client_options.hpp"
#include "voice_broker/redis_endpoint.hpp"
#include "voice_broker/redis_reply.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

// Forward-declared to keep Asio out of this header; a caller passing a strand or an
// io_context's executor includes <boost/asio/any_io_executor.hpp> (net.hpp does) for the conversion.
namespace boost::asio {
class any_io_executor;
}

namespace voice_broker {

class redis_connection : public std::enable_shared_from_this<redis_connection> {
public:
    // `error` is set when there is no reply (see redis_error); otherwise `reply` is Redis's answer,
    // which may itself be an error reply.
    using reply_handler = std::function<void(std::error_code error, redis_reply reply)>;
    using state_observer = std::function<void(redis_link_state)>;

    static std::shared_ptr<redis_connection> create(const boost::asio::any_io_executor& executor,
                                                    redis_client_options options);
    // close()s: pending handlers still run, posted, with redis_error::closed.
    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    // Connects, and keeps reconnecting until close().  Commands issued before wait in the queue.
    void start();
    // Fails every pending command with redis_error::closed (their handlers still run, posted:
    // capture what they touch by shared or weak pointer), disconnects, stops reconnecting.  State
    // observers are never called again, not even with `closed`.
    void close();
    // Drops the current connection (if any) and connects again at once, without back-off.
    void reconnect();

    // Sends `args` (binary-safe: {"SET", key, value}) when the connection is up, in order.  A
    // command still waiting for a connection when `timeout` passes fails with not_connected; one
    // sent but unanswered fails with timeout (and the connection is made again).
    void command(std::vector<std::string> args, std::chrono::milliseconds timeout, reply_handler handler);

    redis_link_state state() const;
    bool is_up() const { return state() == redis_link_state::up; }
    // Why the last attempt or connection failed ("connection refused", "AUTH failed: WRONGPASS
    // ..."); empty when none has.  Never contains a password.
    std::string last_error() const;
    // Where the current connection goes; nullopt while down.
    std::optional<redis_endpoint> connected_endpoint() const;
    // Commands waiting or in flight.
    std::size_t pending_commands() const;

    // Called (posted) on every state change until close(), with the new state.  Returns an id
    // for removal.
    int add_state_observer(state_observer observer);
    void remove_state_observer(int id);

private:
    class impl;
    explicit redis_connection(std::shared_ptr<impl> state);
    std::shared_ptr<impl> impl_;
};

}  // namespace voice_broker
