// websocket_session: one visitor's live channel.  It relays the service's pushes through one
// bounded queue with one write in flight; a status update replaces an unsent older one instead
// of queueing behind it, and a client too slow to drain the queue is dropped.  What the visitor
// sends goes to the service as it is: the session moves bytes and never reads them.
#include "io_errors.hpp"
#include "session_entry_points.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/session_service.hpp"

#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include <vector>

namespace voice_broker {

namespace websocket = beast::websocket;

namespace {

template <class Stream>
class websocket_session final : public live_channel,
                                public connection,
                                public std::enable_shared_from_this<websocket_session<Stream>> {
public:
    websocket_session(Stream stream, websocket_handover handover, std::shared_ptr<server_context> ctx,
                      counted_connection count)
        : ws_(std::move(stream)), handover_(std::move(handover)), ctx_(std::move(ctx)), count_(std::move(count)) {}

    ~websocket_session() override {
        if (registry_id_) ctx_->registry.remove(registry_id_);
    }

    void run() {
        websocket::stream_base::timeout timeouts{};
        timeouts.handshake_timeout = ctx_->settings.limits.request_timeout;
        timeouts.idle_timeout = ctx_->settings.limits.ws_idle_timeout;
        timeouts.keep_alive_pings = true;
        ws_.set_option(timeouts);
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, "voice-broker"); }));
        ws_.read_message_max(ctx_->settings.limits.ws_max_message_bytes);
        ws_.async_accept(handover_.upgrade, beast::bind_front_handler(&websocket_session::on_accept, this->shared_from_this()));
    }

    // Called on the service's thread.  When that is this connection's thread too (always with
    // THREADS=1), the message is queued and its write started at once: a broadcast then sends
    // while it renders, with no posted handler per client.  Otherwise it is posted here.
    void push(std::shared_ptr<const std::string> message, bool replaceable) override {
        if (ws_.get_executor().running_in_this_thread()) return enqueue(std::move(message), replaceable);
        net::post(ws_.get_executor(), [self = this->shared_from_this(), message = std::move(message), replaceable]() mutable {
            self->enqueue(std::move(message), replaceable);
        });
    }

    void finish(close_reason why) override {
        auto close = [self = this->shared_from_this(), why] {
            if (why == close_reason::restart) return self->request_close(websocket::close_code::service_restart);
            self->request_close(self->ctx_->shutting_down.load() ? self->shutdown_close_code() : websocket::close_code::normal);
        };
        if (ws_.get_executor().running_in_this_thread()) return close();
        net::post(ws_.get_executor(), std::move(close));
    }

    void begin_shutdown() override {
        net::post(ws_.get_executor(),
                  [self = this->shared_from_this()] { self->request_close(self->shutdown_close_code()); });
    }

private:
    websocket::close_code shutdown_close_code() const {
        return ctx_->restart_on_shutdown ? websocket::close_code::service_restart : websocket::close_code::going_away;
    }

    void on_accept(error_code ec) {
        if (ec) return log_io_error(ec, "websocket accept", 0);
        accepted_ = true;
        handover_.upgrade = {};  // the request's headers are not needed any more: keep idle clients small
        registry_id_ = ctx_->registry.add(this->weak_from_this());
        ctx_->counters.websocket_clients.fetch_add(1, std::memory_order_relaxed);
        do_read();
        if (close_after_drain_ || ctx_->shutting_down.load()) {  // the server began stopping meanwhile
            detached_ = true;
            ctx_->counters.websocket_clients.fetch_sub(1, std::memory_order_relaxed);
            return do_close(shutdown_close_code());
        }
        channel_id_ = ctx_->service->open_channel(std::move(handover_.ticket), this->shared_from_this());
    }

    // Clients only send small heartbeats, so the pending read asks for a few bytes at a time
    // instead of a whole message: an idle client then holds no grown read buffer.
    static constexpr std::size_t read_chunk = 256;

    void do_read() {
        ws_.async_read_some(read_buffer_.prepare(read_chunk),
                            [self = this->shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
    }

    void on_read(error_code ec, std::size_t n) {
        if (ec) {
            detach();
            return log_io_error(ec, "websocket read", registry_id_);
        }
        read_buffer_.commit(n);  // read_message_max (set in run) bounds a message's size
        if (!ws_.is_message_done()) return do_read();
        auto text = beast::buffers_to_string(read_buffer_.data());
        read_buffer_.consume(read_buffer_.size());
        read_buffer_.shrink_to_fit();
        ctx_->service->channel_message(channel_id_, std::move(text));
        do_read();
    }

    void enqueue(std::shared_ptr<const std::string> message, bool replaceable) {
        if (closing_) return;
        // The front is in flight while writing; anything behind it may still be replaced.
        const bool back_unsent = !queue_.empty() && (!writing_ || queue_.size() > 1);
        if (replaceable && back_unsent && queue_.back().second) {
            queue_.back().first = std::move(message);
            return;
        }
        if (queue_.size() >= ctx_->settings.limits.ws_send_queue_limit) {
            ctx_->counters.websocket_dropped_slow.fetch_add(1, std::memory_order_relaxed);
            spdlog::warn("websocket: dropping a client that does not read its messages ({} queued) rid={}", queue_.size(),
                         handover_.request_id);
            closing_ = true;
            if (writing_) {
                error_code ignored;
                beast::get_lowest_layer(ws_).close(ignored);  // it cannot take a close frame either
            } else {
                do_close(websocket::close_code::policy_error);
            }
            return;
        }
        queue_.emplace_back(std::move(message), replaceable);
        if (!writing_) do_write();
    }

    void do_write() {
        writing_ = true;
        ws_.text(true);
        ws_.async_write(net::buffer(*queue_.front().first),
                        beast::bind_front_handler(&websocket_session::on_write, this->shared_from_this()));
    }

    void on_write(error_code ec, std::size_t) {
        writing_ = false;
        if (ec) {
            detach();
            return log_io_error(ec, "websocket write", registry_id_);
        }
        queue_.erase(queue_.begin());
        if (!queue_.empty()) return do_write();
        if (close_after_drain_) do_close(*close_after_drain_);
    }

    void request_close(websocket::close_code code) {
        if (!accepted_) {
            close_after_drain_ = code;  // on_accept closes at once
            return;
        }
        if (closing_ || close_after_drain_) return;
        if (writing_ || !queue_.empty()) {
            close_after_drain_ = code;
            return;
        }
        do_close(code);
    }

    void do_close(websocket::close_code code) {
        if (close_sent_) return;
        close_sent_ = closing_ = true;
        ws_.async_close(code, [self = this->shared_from_this()](error_code ec) {
            if (ec) log_io_error(ec, "websocket close", self->registry_id_);
        });
    }

    void detach() {
        if (detached_ || !accepted_) return;
        detached_ = true;
        closing_ = true;
        ctx_->counters.websocket_clients.fetch_sub(1, std::memory_order_relaxed);
        ctx_->service->close_channel(channel_id_);
    }

    websocket::stream<Stream> ws_;
    websocket_handover handover_;
    std::shared_ptr<server_context> ctx_;
    counted_connection count_;
    beast::flat_buffer read_buffer_;
    // Almost always empty or one message, at most WS_SEND_QUEUE_LIMIT: a vector costs nothing
    // while empty (a deque allocates its map and a chunk up front).
    std::vector<std::pair<std::shared_ptr<const std::string>, bool>> queue_;
    std::optional<websocket::close_code> close_after_drain_;
    std::uint64_t registry_id_ = 0;
    channel_id channel_id_ = 0;  // the service's name for this channel, from open_channel
    bool accepted_ = false, writing_ = false, closing_ = false, close_sent_ = false, detached_ = false;
};

}  // namespace

void run_websocket(tcp_socket socket, websocket_handover handover, std::shared_ptr<server_context> ctx,
                   counted_connection count) {
    std::make_shared<websocket_session<tcp_socket>>(std::move(socket), std::move(handover), std::move(ctx), std::move(count))
        ->run();
}

void run_websocket(tls_socket stream, websocket_handover handover, std::shared_ptr<server_context> ctx,
                   counted_connection count) {
    SSL_set_mode(stream.native_handle(), SSL_MODE_RELEASE_BUFFERS);  // idle: hold no record buffers
    std::make_shared<websocket_session<tls_socket>>(std::move(stream), std::move(handover), std::move(ctx), std::move(count))
        ->run();
}

}  // namespace voice_broker
