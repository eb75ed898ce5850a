#include "voice_broker/redis_master_locator.hpp"

#include "voice_broker/reconnect_backoff.hpp"
#include "voice_broker/redis_client_options.hpp"
#include "voice_broker/redis_connection.hpp"
#include "voice_broker/redis_error.hpp"
#include "voice_broker/redis_subscriber.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <random>
#include <sstream>

namespace voice_broker {

namespace net = boost::asio;

namespace {

constexpr std::string_view switch_channel = "+switch-master";

std::optional<std::uint16_t> parse_port(const std::string& text) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

}  // namespace

// Sentinel queries go through short-lived redis_connections (one per sentinel asked); the watch
// is one redis_subscriber, replaced by one on the next sentinel when its sentinel goes down.
class redis_master_locator::impl : public std::enable_shared_from_this<impl> {
public:
    impl(const net::any_io_executor& executor, redis_sentinel_settings settings)
        : executor_(executor),
          settings_(std::move(settings)),
          order_(settings_.sentinels),
          watch_retry_timer_(executor),
          watch_backoff_(settings_.watch_retry_min, settings_.watch_retry_max, std::random_device{}()) {}

    void start() {
        if (started_ || closed_ || order_.empty()) return;
        started_ = true;
        watch(0);
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        observers_.clear();
        ++query_generation_;
        ++watch_generation_;
        watch_retry_timer_.cancel();
        if (query_) query_->close();
        query_.reset();
        if (watch_) watch_->close();
        watch_.reset();
        finish(redis_error::closed, {});
    }

    void locate(locate_handler handler) {
        if (closed_) {
            net::post(executor_, [handler = std::move(handler)] { handler(redis_error::closed, {}); });
            return;
        }
        waiters_.push_back(std::move(handler));
        if (waiters_.size() > 1) return;  // a round is under way; it answers everyone
        query_errors_.clear();
        ask(0);
    }

    int add_master_observer(master_observer observer) {
        const int id = next_observer_id_++;
        observers_.emplace(id, std::move(observer));
        return id;
    }

    void remove_master_observer(int id) { observers_.erase(id); }

    std::optional<redis_endpoint> last_known_master() const { return last_master_; }
    const std::string& last_error() const { return last_error_; }
    const redis_sentinel_settings& settings() const { return settings_; }

private:
    redis_client_options sentinel_options(const redis_endpoint& sentinel, bool watch) const {
        redis_client_options options;
        options.log_name = watch ? "sentinel watch" : "sentinel query";
        options.log_at_info = watch;
        options.url.endpoint = sentinel;
        options.url.username = settings_.username;
        options.url.password = settings_.password;
        options.url.database = 0;  // sentinels have no databases (and no SELECT)
        options.connect_timeout = settings_.query_timeout;
        options.reconnect_delay_min = settings_.watch_retry_min;
        options.reconnect_delay_max = settings_.watch_retry_max;
        return options;
    }

    // ---- locate: ask the sentinels in turn ----------------------------------------------------

    void ask(std::size_t index) {
        if (index >= order_.size()) {
            std::ostringstream why;
            why << "no sentinel named a master for '" << settings_.master_name << "'";
            for (std::size_t i = 0; i < query_errors_.size(); ++i) why << (i == 0 ? ": " : "; ") << query_errors_[i];
            last_error_ = why.str();
            finish(redis_error::no_master, {});
            return;
        }
        const auto generation = ++query_generation_;
        query_ = redis_connection::create(executor_, sentinel_options(order_[index], false));
        auto weak = weak_from_this();
        query_->add_state_observer([weak, index, generation](redis_link_state state) {
            auto self = weak.lock();
            if (self && state == redis_link_state::down && self->query_generation_ == generation) {
                self->ask_failed(index, self->query_ ? self->query_->last_error() : std::string("down"));
            }
        });
        query_->start();
        query_->command({"SENTINEL", "get-master-addr-by-name", settings_.master_name}, settings_.query_timeout,
                        [weak, index, generation](std::error_code ec, redis_reply reply) {
                            auto self = weak.lock();
                            if (self && self->query_generation_ == generation) self->on_answer(index, ec, reply);
                        });
    }

    void ask_failed(std::size_t index, std::string why) {
        ++query_generation_;
        query_errors_.push_back(order_[index].to_string() + ": " + why);
        if (query_) query_->close();
        query_.reset();
        ask(index + 1);
    }

    void on_answer(std::size_t index, std::error_code ec, const redis_reply& reply) {
        if (ec) {
            ask_failed(index, ec.message());
            return;
        }
        if (reply.is_nil()) {
            ask_failed(index, "does not know a master named '" + settings_.master_name + "'");
            return;
        }
        if (reply.type != redis_reply_type::array || reply.elements.size() != 2) {
            ask_failed(index, "answered " + reply.describe());
            return;
        }
        const auto port = parse_port(reply.elements[1].text);
        if (!port || reply.elements[0].text.empty()) {
            ask_failed(index, "answered " + reply.describe());
            return;
        }
        ++query_generation_;
        query_->close();
        query_.reset();
        // The sentinel that answered is asked first next time.
        std::rotate(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(index),
                    order_.begin() + static_cast<std::ptrdiff_t>(index) + 1);
        const redis_endpoint master{reply.elements[0].text, *port, {}};
        note_master(master, false);
        finish({}, master);
    }

    void finish(std::error_code ec, const redis_endpoint& master) {
        auto waiters = std::move(waiters_);
        waiters_.clear();
        for (auto& waiter : waiters) {
            net::post(executor_, [waiter = std::move(waiter), ec, master] { waiter(ec, master); });
        }
    }

    // ---- watch: +switch-master on one sentinel ------------------------------------------------

    void watch(std::size_t index) {
        if (closed_) return;
        const auto generation = ++watch_generation_;
        watch_index_ = index % settings_.sentinels.size();
        watch_ = redis_subscriber::create(executor_, sentinel_options(settings_.sentinels[watch_index_], true));
        watch_->subscribe(std::string(switch_channel));
        auto weak = weak_from_this();
        watch_->on_message([weak](const redis_message& message) {
            if (auto self = weak.lock()) self->on_switch_message(message.payload);
        });
        watch_->on_resync([weak, generation] {
            auto self = weak.lock();
            if (!self || self->watch_generation_ != generation) return;
            self->watch_backoff_.reset();
            // A switch announced while nobody listened is lost: ask again, and compare.
            self->locate([](std::error_code, redis_endpoint) {});
        });
        watch_->add_state_observer([weak, generation](redis_link_state state) {
            auto self = weak.lock();
            if (self && state == redis_link_state::down && self->watch_generation_ == generation) self->watch_failed();
        });
        watch_->start();
    }

    void watch_failed() {
        const auto generation = ++watch_generation_;
        spdlog::warn("redis sentinel: lost the watch on {} ({}); watching the next sentinel",
                     settings_.sentinels[watch_index_].to_string(), watch_ ? watch_->last_error() : std::string());
        if (watch_) watch_->close();
        watch_.reset();
        watch_retry_timer_.expires_after(watch_backoff_.next_delay());
        watch_retry_timer_.async_wait([weak = weak_from_this(), generation](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->closed_ || self->watch_generation_ != generation) return;
            self->watch(self->watch_index_ + 1);
        });
    }

    // "<master-name> <old-ip> <old-port> <new-ip> <new-port>"
    void on_switch_message(const std::string& payload) {
        std::istringstream fields(payload);
        std::string name, old_ip, old_port, new_ip, new_port;
        if (!(fields >> name >> old_ip >> old_port >> new_ip >> new_port) || name != settings_.master_name) return;
        const auto port = parse_port(new_port);
        if (!port) return;
        spdlog::info("redis sentinel: +switch-master {} from {}:{} to {}:{}", name, old_ip, old_port, new_ip, new_port);
        // The sentinel that announced it knows the new master: ask it first.
        const auto announcer = std::find(order_.begin(), order_.end(), settings_.sentinels[watch_index_]);
        if (announcer != order_.end()) std::rotate(order_.begin(), announcer, announcer + 1);
        note_master(redis_endpoint{new_ip, *port, {}}, true);
    }

    // Observers hear of a move: an announced switch, or an answer that differs from the last one
    // (the first answer ever is not a move).
    void note_master(const redis_endpoint& master, bool announced) {
        const bool moved = last_master_ ? *last_master_ != master : announced;
        last_master_ = master;
        if (!moved) return;
        for (const auto& [id, observer] : observers_) {
            net::post(executor_, [weak = weak_from_this(), id = id, master] {
                auto self = weak.lock();
                if (!self) return;
                const auto it = self->observers_.find(id);
                if (it != self->observers_.end()) it->second(master);
            });
        }
    }

    net::any_io_executor executor_;
    redis_sentinel_settings settings_;
    std::vector<redis_endpoint> order_;  // who to ask first
    bool started_ = false;
    bool closed_ = false;

    std::vector<locate_handler> waiters_;
    std::shared_ptr<redis_connection> query_;
    std::uint64_t query_generation_ = 0;
    std::vector<std::string> query_errors_;

    std::shared_ptr<redis_subscriber> watch_;
    std::size_t watch_index_ = 0;
    std::uint64_t watch_generation_ = 0;
    net::steady_timer watch_retry_timer_;
    reconnect_backoff watch_backoff_;

    std::map<int, master_observer> observers_;
    int next_observer_id_ = 1;
    std::optional<redis_endpoint> last_master_;
    std::string last_error_;
};

std::shared_ptr<redis_master_locator> redis_master_locator::create(const net::any_io_executor& executor,
                                                                   redis_sentinel_settings settings) {
    return std::shared_ptr<redis_master_locator>(
        new redis_master_locator(std::make_shared<impl>(executor, std::move(settings))));
}

redis_master_locator::redis_master_locator(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
redis_master_locator::~redis_master_locator() { impl_->close(); }

void redis_master_locator::start() { impl_->start(); }
void redis_master_locator::close() { impl_->close(); }
void redis_master_locator::locate(locate_handler handler) { impl_->locate(std::move(handler)); }
int redis_master_locator::add_master_observer(master_observer observer) {
    return impl_->add_master_observer(std::move(observer));
}
void redis_master_locator::remove_master_observer(int id) { impl_->remove_master_observer(id); }
std::optional<redis_endpoint> redis_master_locator::last_known_master() const { return impl_->last_known_master(); }
std::string redis_master_locator::last_error() const { return impl_->last_error(); }
const redis_sentinel_settings& redis_master_locator::settings() const { return impl_->settings(); }

}  // namespace voice_broker
