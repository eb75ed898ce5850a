#include "voice_broker/redis_subscriber.hpp"

#include "redis_link.hpp"
#include "voice_broker/redis_error.hpp"

#include <boost/asio/post.hpp>
#include <hiredis/async.h>

#include <random>
#include <set>
#include <vector>

namespace voice_broker {

namespace net = boost::asio;

namespace {

std::string make_probe_channel() {
    std::random_device entropy;
    return "__voice_broker_probe__:" + std::to_string(entropy()) + std::to_string(entropy());
}

std::string element_text(const redisReply& reply, std::size_t index) {
    if (index >= reply.elements) return {};
    const auto* element = reply.element[index];
    if (element->type != REDIS_REPLY_STRING && element->type != REDIS_REPLY_STATUS) return {};
    return std::string(element->str, element->len);
}

}  // namespace

// Subscriptions on top of redis_link.  hiredis 0.14 keeps one callback per channel and calls it
// for the confirmation and every message; all of them are on_channel_reply, which finds this
// object through the context's data pointer.  The probe: a second SUBSCRIBE of a private channel
// is confirmed like the first, so it proves the server answers without leaving subscribed mode
// (PING in subscribed mode is not matched to its callback by hiredis 0.14).
class redis_subscriber::impl final : public redis_link {
public:
    impl(const net::any_io_executor& executor, redis_client_options options)
        : redis_link(executor, std::move(options), "subscriber"),
          probe_channel_(make_probe_channel()),
          probe_timer_(executor) {}

    void set_message_handler(message_handler handler) { message_handler_ = std::move(handler); }
    void set_resync_handler(resync_handler handler) { resync_handler_ = std::move(handler); }

    void subscribe(std::string channel) {
        if (!channels_.insert(channel).second || !subscribed_mode()) return;
        send({"SUBSCRIBE", channel});
        if (subscribing_) ++confirmations_left_;
    }

    void psubscribe(std::string pattern) {
        if (!patterns_.insert(pattern).second || !subscribed_mode()) return;
        send({"PSUBSCRIBE", pattern});
        if (subscribing_) ++confirmations_left_;
    }

    void unsubscribe(const std::string& channel) {
        if (channels_.erase(channel) == 0 || !subscribed_mode()) return;
        send({"UNSUBSCRIBE", channel});
    }

    void punsubscribe(const std::string& pattern) {
        if (patterns_.erase(pattern) == 0 || !subscribed_mode()) return;
        send({"PUNSUBSCRIBE", pattern});
    }

private:
    // After the handshake, the context is in subscribed mode until it is lost.
    bool subscribed_mode() const { return context() != nullptr && (subscribing_ || state() == redis_link_state::up); }

    void on_handshake_done() override {
        subscribing_ = true;
        std::vector<std::string> subscribe_command{"SUBSCRIBE", probe_channel_};
        subscribe_command.insert(subscribe_command.end(), channels_.begin(), channels_.end());
        confirmations_left_ = subscribe_command.size() - 1;
        send(subscribe_command);
        if (!patterns_.empty()) {
            std::vector<std::string> psubscribe_command{"PSUBSCRIBE"};
            psubscribe_command.insert(psubscribe_command.end(), patterns_.begin(), patterns_.end());
            confirmations_left_ += patterns_.size();
            send(psubscribe_command);
        }
    }

    void on_connection_lost() override { forget_subscription_state(); }
    void on_close() override { forget_subscription_state(); }

    void forget_subscription_state() {
        subscribing_ = false;
        confirmations_left_ = 0;
        probe_outstanding_ = false;
        probe_timer_.cancel();
    }

    void send(const std::vector<std::string>& args) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lengths;
        for (const auto& arg : args) {
            argv.push_back(arg.data());
            lengths.push_back(arg.size());
        }
        redisAsyncCommandArgv(context(), &impl::on_channel_reply, nullptr, static_cast<int>(argv.size()), argv.data(),
                              lengths.data());
    }

    static void on_channel_reply(redisAsyncContext* context, void* reply, void*) {
        auto* link = static_cast<redis_link*>(context->data);
        if (link == nullptr || reply == nullptr) return;  // closed, or the context is being freed
        static_cast<impl*>(link)->on_channel_reply(*static_cast<redisReply*>(reply));
    }

    void on_channel_reply(const redisReply& reply) {
        if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 3) {
            if (reply.type == REDIS_REPLY_ERROR) {
                drop("SUBSCRIBE failed: " + std::string(reply.str, reply.len));
            }
            return;
        }
        const auto kind = element_text(reply, 0);
        // The membership checks drop a message still in flight for a channel just unsubscribed
        // (hiredis 0.14 may hand it to the previous reply's callback instead of dropping it).
        if (kind == "message") {
            auto channel = element_text(reply, 1);
            if (channels_.count(channel) != 0) deliver(redis_message{std::move(channel), element_text(reply, 2), {}});
        } else if (kind == "pmessage" && reply.elements >= 4) {
            auto pattern = element_text(reply, 1);
            if (patterns_.count(pattern) != 0) {
                deliver(redis_message{element_text(reply, 2), element_text(reply, 3), std::move(pattern)});
            }
        } else if (kind == "subscribe" || kind == "psubscribe") {
            on_confirmation(kind == "subscribe" && element_text(reply, 1) == probe_channel_);
        }
    }

    void on_confirmation(bool probe_channel) {
        if (subscribing_) {
            if (confirmations_left_ > 0 && --confirmations_left_ == 0) {
                subscribing_ = false;
                declare_up();
                net::post(executor(), [weak = weak_self()] {
                    auto self = weak.lock();
                    if (self && !self->closing() && self->resync_handler_) self->resync_handler_();
                });
                schedule_probe();
            }
            return;
        }
        if (probe_channel && probe_outstanding_) {
            probe_outstanding_ = false;
            schedule_probe();
        }
    }

    void deliver(redis_message message) {
        net::post(executor(), [weak = weak_self(), message = std::move(message)] {
            auto self = weak.lock();
            if (self && !self->closing() && self->message_handler_) self->message_handler_(message);
        });
    }

    void schedule_probe() {
        const auto interval = options().subscriber_probe_interval;
        if (interval.count() <= 0) return;
        probe_timer_.expires_after(interval);
        probe_timer_.async_wait([weak = weak_self()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (!ec && self) self->on_probe_timer();
        });
    }

    void on_probe_timer() {
        if (closing() || state() != redis_link_state::up || context() == nullptr) return;
        if (probe_outstanding_) {
            drop("the subscription probe got no answer within " +
                                           std::to_string(options().connect_timeout.count()) + " ms");
            return;
        }
        probe_outstanding_ = true;
        send({"SUBSCRIBE", probe_channel_});
        probe_timer_.expires_after(options().connect_timeout);
        probe_timer_.async_wait([weak = weak_self()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (!ec && self) self->on_probe_timer();
        });
    }

    std::weak_ptr<impl> weak_self() { return std::static_pointer_cast<impl>(shared_from_this()); }

    std::set<std::string> channels_;
    std::set<std::string> patterns_;
    message_handler message_handler_;
    resync_handler resync_handler_;
    const std::string probe_channel_;
    bool subscribing_ = false;  // (re)subscribed, confirmations still due
    std::size_t confirmations_left_ = 0;
    bool probe_outstanding_ = false;
    net::steady_timer probe_timer_;
};

std::shared_ptr<redis_subscriber> redis_subscriber::create(const net::any_io_executor& executor,
                                                           redis_client_options options) {
    return std::shared_ptr<redis_subscriber>(
        new redis_subscriber(std::make_shared<impl>(executor, std::move(options))));
}

redis_subscriber::redis_subscriber(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
redis_subscriber::~redis_subscriber() { impl_->close(); }

void redis_subscriber::on_message(message_handler handler) { impl_->set_message_handler(std::move(handler)); }
void redis_subscriber::on_resync(resync_handler handler) { impl_->set_resync_handler(std::move(handler)); }
void redis_subscriber::subscribe(std::string channel) { impl_->subscribe(std::move(channel)); }
void redis_subscriber::psubscribe(std::string pattern) { impl_->psubscribe(std::move(pattern)); }
void redis_subscriber::unsubscribe(const std::string& channel) { impl_->unsubscribe(channel); }
void redis_subscriber::punsubscribe(const std::string& pattern) { impl_->punsubscribe(pattern); }
void redis_subscriber::start() { impl_->start(); }
void redis_subscriber::close() { impl_->close(); }
void redis_subscriber::reconnect() { impl_->reconnect_now(); }
redis_link_state redis_subscriber::state() const { return impl_->state(); }
std::string redis_subscriber::last_error() const { return impl_->last_error(); }
std::optional<redis_endpoint> redis_subscriber::connected_endpoint() const { return impl_->connected_endpoint(); }
int redis_subscriber::add_state_observer(state_observer observer) {
    return impl_->add_state_observer(std::move(observer));
}
void redis_subscriber::remove_state_observer(int id) { impl_->remove_state_observer(id); }

}  // namespace voice_broker
