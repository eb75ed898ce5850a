// redis_link: what redis_connection and redis_subscriber share: one hiredis async context at a
// time and its life cycle.  Locate (Sentinel) or take the URL's endpoint, resolve the name
// (asynchronously: hiredis 0.14 would block in getaddrinfo), connect over TCP or a unix socket,
// then the handshake (AUTH, SELECT, CLIENT SETNAME, PING, and ROLE under Sentinel), all within
// connect_timeout.  On failure or loss: "down", a jittered back-off, and again, until close().
//
// A subclass adds what it sends once the handshake is done and decides when the link is "up".
// Everything runs on one executor; hiredis's callbacks reach the link through the context's
// `data` pointer, which is this object (cleared at close(), so a context freed later finds no
// one).  Nothing here runs user code inline: observers are posted.
#pragma once

#include "voice_broker/reconnect_backoff.hpp"
#include "voice_broker/redis_client_options.hpp"
#include "voice_broker/redis_endpoint.hpp"
#include "voice_broker/redis_reply.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

struct redisAsyncContext;
struct redisReply;

namespace voice_broker {

class redis_link : public std::enable_shared_from_this<redis_link> {
public:
    redis_link(const boost::asio::any_io_executor& executor, redis_client_options options, std::string role);
    virtual ~redis_link();
    redis_link(const redis_link&) = delete;
    redis_link& operator=(const redis_link&) = delete;

    void start();
    void close();
    // Drop the current connection (or attempt) and try again now, without back-off.
    void reconnect_now();

    redis_link_state state() const { return state_; }
    const std::string& last_error() const { return last_error_; }
    std::optional<redis_endpoint> connected_endpoint() const;
    int add_state_observer(std::function<void(redis_link_state)> observer);
    void remove_state_observer(int id);
    const boost::asio::any_io_executor& executor() const { return executor_; }

    // hiredis's reply as a plain value.
    static redis_reply to_reply(const redisReply& reply);

protected:
    // The context while connected (also during the handshake); null otherwise.
    redisAsyncContext* context() const { return context_; }
    bool closing() const { return closing_; }
    const redis_client_options& options() const { return options_; }
    // True while hiredis runs a reply callback of the current context.
    bool in_hiredis_callback() const;

    // The handshake succeeded (called inside hiredis's reply callback).  Call declare_up() when
    // ready to serve.
    virtual void on_handshake_done() = 0;
    // The context is gone; hiredis has already run every pending reply callback (null reply).
    virtual void on_connection_lost() = 0;
    // close(): fail everything still pending.  Reply callbacks of the freed context do not reach
    // the link any more.
    virtual void on_close() = 0;

    void declare_up();
    // Drops the current connection and reconnects after the back-off.  Inside a hiredis callback
    // the drop is posted (hiredis must not be freed under its own feet).
    void drop(std::string detail);

private:
    void begin_attempt();
    void connect_to(const redis_endpoint& endpoint, std::uint64_t attempt);
    void open_context(const redis_endpoint& endpoint, const std::string& address, std::uint64_t attempt);
    void send_handshake();
    void handshake_step_done(int step, const redisReply& reply);
    void disconnect();
    void connection_failed(std::string detail);
    void set_state(redis_link_state state);
    void on_master_moved(const redis_endpoint& master);

    static void on_connect(const redisAsyncContext* context, int status);
    static void on_disconnect(const redisAsyncContext* context, int status);
    static void on_handshake_reply(redisAsyncContext* context, void* reply, void* privdata);

    boost::asio::any_io_executor executor_;
    redis_client_options options_;
    std::string role_;  // "connection" or "subscriber", for logs
    redis_link_state state_ = redis_link_state::connecting;
    bool started_ = false;
    bool closing_ = false;
    redisAsyncContext* context_ = nullptr;
    std::uint64_t attempt_ = 0;  // bumped per attempt and per drop: stale results compare unequal
    std::optional<redis_endpoint> endpoint_;     // of the current context
    std::optional<redis_endpoint> master_hint_;  // from +switch-master: try it before asking again
    int handshake_pending_ = 0;
    bool handshake_failed_ = false;
    std::string last_error_;
    unsigned failed_attempts_ = 0;  // since the last "up", for logs
    reconnect_backoff backoff_;
    boost::asio::steady_timer reconnect_timer_;
    boost::asio::steady_timer connect_timer_;
    boost::asio::ip::tcp::resolver resolver_;
    std::map<int, std::function<void(redis_link_state)>> observers_;
    int next_observer_id_ = 1;
    int master_observer_id_ = 0;
};

}  // namespace voice_broker
