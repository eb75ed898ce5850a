#include "redis_link.hpp"

#include "redis_asio_adapter.hpp"
#include "voice_broker/redis_error.hpp"
#include "voice_broker/redis_master_locator.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <hiredis/async.h>
#include <spdlog/spdlog.h>

#include <iterator>
#include <random>
#include <vector>

namespace voice_broker {

namespace net = boost::asio;

namespace {

// The handshake's steps, carried in hiredis's privdata.
enum handshake_step : int { step_auth = 1, step_select, step_client_name, step_ping, step_role };

void* step_tag(handshake_step step) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(step)); }

std::uint64_t fresh_seed() {
    std::random_device entropy;
    return (static_cast<std::uint64_t>(entropy()) << 32) ^ entropy();
}

// The text of an error (or status) reply.
std::string describe_error_text(const redisReply& reply) {
    return reply.str != nullptr ? std::string(reply.str, reply.len) : std::string();
}

}  // namespace

const char* to_string(redis_link_state state) {
    switch (state) {
    case redis_link_state::connecting: return "connecting";
    case redis_link_state::up: return "up";
    case redis_link_state::down: return "down";
    case redis_link_state::closed: return "closed";
    }
    return "?";
}

redis_link::redis_link(const net::any_io_executor& executor, redis_client_options options, std::string role)
    : executor_(executor),
      options_(std::move(options)),
      role_(options_.log_name.empty() ? std::move(role) : options_.log_name),
      backoff_(options_.reconnect_delay_min, options_.reconnect_delay_max, fresh_seed()),
      reconnect_timer_(executor),
      connect_timer_(executor),
      resolver_(executor) {}

redis_link::~redis_link() {
    // The owner closes first; this is the last line of defence against a context pointing here.
    if (context_ != nullptr) {
        context_->data = nullptr;
        redisAsyncFree(std::exchange(context_, nullptr));
    }
}

redis_reply redis_link::to_reply(const redisReply& reply) {
    switch (reply.type) {
    case REDIS_REPLY_INTEGER: return redis_reply::make_integer(reply.integer);
    case REDIS_REPLY_STRING: return redis_reply::make_string(std::string(reply.str, reply.len));
    case REDIS_REPLY_STATUS: return redis_reply::make_status(std::string(reply.str, reply.len));
    case REDIS_REPLY_ERROR: return redis_reply::make_error(std::string(reply.str, reply.len));
    case REDIS_REPLY_ARRAY: {
        std::vector<redis_reply> elements;
        elements.reserve(reply.elements);
        for (std::size_t i = 0; i < reply.elements; ++i) elements.push_back(to_reply(*reply.element[i]));
        return redis_reply::make_array(std::move(elements));
    }
    default: return redis_reply::nil();
    }
}

std::optional<redis_endpoint> redis_link::connected_endpoint() const {
    if (state_ != redis_link_state::up) return std::nullopt;
    return endpoint_;
}

int redis_link::add_state_observer(std::function<void(redis_link_state)> observer) {
    const int id = next_observer_id_++;
    observers_.emplace(id, std::move(observer));
    return id;
}

void redis_link::remove_state_observer(int id) { observers_.erase(id); }

bool redis_link::in_hiredis_callback() const {
    return context_ != nullptr && (context_->c.flags & REDIS_IN_CALLBACK) != 0;
}

void redis_link::start() {
    if (started_ || closing_) return;
    started_ = true;
    if (options_.sentinel) {
        master_observer_id_ = options_.sentinel->add_master_observer(
            [weak = weak_from_this()](const redis_endpoint& master) {
                if (auto self = weak.lock()) self->on_master_moved(master);
            });
    }
    begin_attempt();
}

void redis_link::close() {
    if (closing_) return;
    closing_ = true;
    reconnect_timer_.cancel();
    connect_timer_.cancel();
    resolver_.cancel();
    if (options_.sentinel && master_observer_id_ != 0) options_.sentinel->remove_master_observer(master_observer_id_);
    ++attempt_;
    if (context_ != nullptr) {
        // Detach first: the reply callbacks hiredis runs while freeing (perhaps later, when
        // close() is called from inside one) must not reach us; on_close() answers them all.
        auto* context = std::exchange(context_, nullptr);
        context->data = nullptr;
        redisAsyncFree(context);
    }
    endpoint_.reset();
    on_close();
    // An owner that closes (perhaps in its destructor) is never called back: no observer hears
    // of "closed", nor of a change posted before.
    observers_.clear();
    state_ = redis_link_state::closed;
}

void redis_link::reconnect_now() {
    if (closing_ || !started_) return;
    if (in_hiredis_callback()) {
        net::post(executor_, [self = shared_from_this()] { self->reconnect_now(); });
        return;
    }
    reconnect_timer_.cancel();
    disconnect();
    if (state_ == redis_link_state::up) set_state(redis_link_state::down);
    backoff_.reset();
    begin_attempt();
}

void redis_link::begin_attempt() {
    if (closing_) return;
    const auto attempt = ++attempt_;
    if (options_.sentinel) {
        if (master_hint_) {
            const auto hint = *std::exchange(master_hint_, std::nullopt);
            connect_to(hint, attempt);
            return;
        }
        options_.sentinel->locate([weak = weak_from_this(), attempt](std::error_code ec, redis_endpoint master) {
            auto self = weak.lock();
            if (!self || self->closing_ || self->attempt_ != attempt) return;
            if (ec) {
                self->connection_failed(self->options_.sentinel->last_error());
                return;
            }
            self->connect_to(master, attempt);
        });
        return;
    }
    connect_to(options_.url.endpoint, attempt);
}

void redis_link::connect_to(const redis_endpoint& endpoint, std::uint64_t attempt) {
    connect_timer_.expires_after(options_.connect_timeout);
    connect_timer_.async_wait([weak = weak_from_this(), attempt](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self || self->closing_ || self->attempt_ != attempt || self->state_ == redis_link_state::up) return;
        const auto where = self->endpoint_ ? self->endpoint_->to_string() : std::string("Redis");
        self->drop(where + " did not complete connect and handshake within " +
                                             std::to_string(self->options_.connect_timeout.count()) + " ms");
    });

    if (endpoint.is_unix_socket()) {
        open_context(endpoint, {}, attempt);
        return;
    }
    boost::system::error_code literal_error;
    net::ip::make_address(endpoint.host, literal_error);
    if (!literal_error) {
        open_context(endpoint, endpoint.host, attempt);
        return;
    }
    resolver_.async_resolve(
        endpoint.host, std::to_string(endpoint.port),
        [weak = weak_from_this(), endpoint, attempt](const boost::system::error_code& ec,
                                                    const net::ip::tcp::resolver::results_type& results) {
            auto self = weak.lock();
            if (!self || self->closing_ || self->attempt_ != attempt) return;
            if (ec || results.empty()) {
                self->connection_failed("cannot resolve " + endpoint.host + ": " + ec.message());
                return;
            }
            // A name with several addresses (localhost: ::1 and 127.0.0.1): each failed attempt
            // moves on to the next one.
            auto chosen = results.begin();
            std::advance(chosen, static_cast<std::ptrdiff_t>(self->failed_attempts_ % results.size()));
            self->open_context(endpoint, chosen->endpoint().address().to_string(), attempt);
        });
}

void redis_link::open_context(const redis_endpoint& endpoint, const std::string& address, std::uint64_t attempt) {
    if (closing_ || attempt_ != attempt) return;
    redisAsyncContext* context = endpoint.is_unix_socket()
                                     ? redisAsyncConnectUnix(endpoint.socket_path.c_str())
                                     : redisAsyncConnect(address.c_str(), endpoint.port);
    if (context == nullptr) {
        connection_failed(endpoint.to_string() + ": out of memory");
        return;
    }
    if (context->err != 0) {
        std::string why = context->errstr;
        redisAsyncFree(context);
        connection_failed(endpoint.to_string() + ": " + why);
        return;
    }
    // TCP keepalive (hiredis 0.14: idle 15 s) finds a peer that vanished without a word.
    if (!endpoint.is_unix_socket()) redisEnableKeepAlive(&context->c);
    context->data = this;
    if (!redis_asio_adapter::attach(context, executor_)) {
        redisAsyncFree(context);
        connection_failed(endpoint.to_string() + ": cannot watch the socket");
        return;
    }
    context_ = context;
    endpoint_ = endpoint;
    redisAsyncSetConnectCallback(context, &redis_link::on_connect);  // asks to write: connect(2) completes
    redisAsyncSetDisconnectCallback(context, &redis_link::on_disconnect);
}

void redis_link::on_connect(const redisAsyncContext* context, int status) {
    auto* self = static_cast<redis_link*>(context->data);
    if (self == nullptr || self->context_ != context) return;
    if (status != REDIS_OK) {
        // hiredis frees the context as soon as this returns.
        const std::string why = context->errstr;
        self->context_ = nullptr;
        ++self->attempt_;
        self->connection_failed(self->endpoint_->to_string() + ": " + why);
        return;
    }
    self->send_handshake();
}

void redis_link::on_disconnect(const redisAsyncContext* context, int status) {
    auto* self = static_cast<redis_link*>(context->data);
    // A context we freed ourselves (drop, close) was detached before: nothing to do.
    if (self == nullptr || self->context_ != context) return;
    const std::string why = status == REDIS_OK ? std::string("closed") : std::string(context->errstr);
    self->context_ = nullptr;  // hiredis frees it as soon as this returns
    ++self->attempt_;
    self->on_connection_lost();
    self->connection_failed(self->endpoint_->to_string() + ": connection lost (" + why + ")");
}

void redis_link::send_handshake() {
    handshake_pending_ = 0;
    handshake_failed_ = false;
    auto send = [this](handshake_step step, const std::vector<std::string>& args) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lengths;
        for (const auto& arg : args) {
            argv.push_back(arg.data());
            lengths.push_back(arg.size());
        }
        if (redisAsyncCommandArgv(context_, &redis_link::on_handshake_reply, step_tag(step),
                                  static_cast<int>(argv.size()), argv.data(), lengths.data()) == REDIS_OK) {
            ++handshake_pending_;
        }
    };
    const auto& url = options_.url;
    if (!url.password.empty()) {
        if (url.username.empty()) send(step_auth, {"AUTH", url.password});
        else send(step_auth, {"AUTH", url.username, url.password});
    }
    if (url.database != 0) send(step_select, {"SELECT", std::to_string(url.database)});
    if (!options_.client_name.empty()) send(step_client_name, {"CLIENT", "SETNAME", options_.client_name});
    send(step_ping, {"PING"});
    if (options_.sentinel) send(step_role, {"ROLE"});
}

void redis_link::on_handshake_reply(redisAsyncContext* context, void* reply, void* privdata) {
    auto* self = static_cast<redis_link*>(context->data);
    // A null reply: the context is being freed; whoever frees it handles the loss.
    if (self == nullptr || reply == nullptr || self->context_ != context) return;
    self->handshake_step_done(static_cast<int>(reinterpret_cast<std::uintptr_t>(privdata)),
                              *static_cast<redisReply*>(reply));
}

void redis_link::handshake_step_done(int step, const redisReply& reply) {
    std::optional<std::string> problem;
    const bool is_error = reply.type == REDIS_REPLY_ERROR;
    switch (step) {
    case step_auth:
        if (is_error) problem.emplace("AUTH failed: " + describe_error_text(reply));
        break;
    case step_select:
        if (is_error) {
            problem.emplace("SELECT " + std::to_string(options_.url.database) +
                                                       " failed: " + describe_error_text(reply));
        }
        break;
    case step_client_name:
        if (is_error) spdlog::warn("redis {}: CLIENT SETNAME refused: {}", role_, describe_error_text(reply));
        break;
    case step_ping:
        if (is_error) {
            const auto text = describe_error_text(reply);
            if (text.rfind("NOAUTH", 0) == 0) {
                problem.emplace("Redis requires a password: put it in the URL (redis://:password@host:6379/0)");
            } else if (text.rfind("LOADING", 0) == 0) {
                problem.emplace("Redis is still loading its dataset");
            } else {
                problem.emplace("PING failed: " + text);
            }
        }
        break;
    case step_role: {
        std::string role;
        if (reply.type == REDIS_REPLY_ARRAY && reply.elements > 0 && reply.element[0]->type == REDIS_REPLY_STRING) {
            role.assign(reply.element[0]->str, reply.element[0]->len);
        }
        if (role != "master") {
            problem.emplace("ROLE says '" + (role.empty() ? to_reply(reply).describe() : role) + "', not master");
        }
        break;
    }
    default: break;
    }
    if (problem && !handshake_failed_) {
        handshake_failed_ = true;
        drop((endpoint_ ? endpoint_->to_string() + ": " : std::string()) + *problem);
    }
    if (--handshake_pending_ == 0 && !handshake_failed_) on_handshake_done();
}

void redis_link::declare_up() {
    if (closing_ || state_ == redis_link_state::up) return;
    connect_timer_.cancel();
    backoff_.reset();
    const auto where = endpoint_ ? endpoint_->to_string() : std::string("?");
    const auto level = options_.log_at_info ? spdlog::level::info : spdlog::level::debug;
    if (failed_attempts_ > 0 || state_ == redis_link_state::down) {
        spdlog::log(level, "redis {}: connected to {} (db {}) after {} failed attempt(s)", role_, where,
                    options_.url.database, failed_attempts_);
    } else {
        spdlog::log(level, "redis {}: connected to {} (db {})", role_, where, options_.url.database);
    }
    failed_attempts_ = 0;
    last_error_.clear();
    set_state(redis_link_state::up);
}

void redis_link::drop(std::string detail) {
    if (closing_) return;
    if (in_hiredis_callback()) {
        net::post(executor_, [self = shared_from_this(), attempt = attempt_, detail = std::move(detail)]() mutable {
            if (self->attempt_ == attempt) self->drop(std::move(detail));
        });
        return;
    }
    disconnect();
    connection_failed(std::move(detail));
}

void redis_link::disconnect() {
    ++attempt_;
    connect_timer_.cancel();
    resolver_.cancel();
    if (context_ != nullptr) {
        // hiredis runs every pending reply callback with a null reply, then (connected or not)
        // frees the context; on_disconnect sees it is no longer ours.
        redisAsyncFree(std::exchange(context_, nullptr));
        on_connection_lost();
    }
}

void redis_link::connection_failed(std::string detail) {
    if (closing_) return;
    connect_timer_.cancel();
    endpoint_.reset();
    ++failed_attempts_;
    const auto delay = backoff_.next_delay();
    if (options_.log_at_info && (state_ != redis_link_state::down || failed_attempts_ == 1)) {
        spdlog::warn("redis {}: {}; retrying in {} ms", role_, detail, delay.count());
    } else {
        spdlog::debug("redis {}: {}; retrying in {} ms", role_, detail, delay.count());
    }
    last_error_ = std::move(detail);
    set_state(redis_link_state::down);
    reconnect_timer_.expires_after(delay);
    // The attempt number too: cancel() cannot stop a handler that is already queued, and a
    // second begin_attempt() would open a second context over the first (which then leaks).
    reconnect_timer_.async_wait([weak = weak_from_this(), attempt = attempt_](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self || self->closing_ || self->attempt_ != attempt) return;
        self->begin_attempt();
    });
}

void redis_link::on_master_moved(const redis_endpoint& master) {
    if (closing_) return;
    if (endpoint_ && *endpoint_ == master) return;  // connected, or connecting, there already
    spdlog::info("redis {}: the master moved to {}; reconnecting", role_, master.to_string());
    master_hint_ = master;
    reconnect_now();
}

void redis_link::set_state(redis_link_state state) {
    if (state_ == state) return;
    state_ = state;
    if (observers_.empty()) return;
    net::post(executor_, [weak = weak_from_this(), state] {
        auto self = weak.lock();
        if (!self) return;
        // Copied: an observer may add or remove observers.
        const auto observers = self->observers_;
        for (const auto& [id, observer] : observers) {
            if (self->observers_.count(id) != 0) observer(state);
        }
    });
}

}  // namespace voice_broker
