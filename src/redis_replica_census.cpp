#include "voice_broker/redis_replica_census.hpp"

#include "voice_broker/redis_client_options.hpp"
#include "voice_broker/redis_connection.hpp"
#include "voice_broker/redis_error.hpp"
#include "voice_broker/redis_reply.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>

#include <string_view>
#include <vector>

namespace voice_broker {

namespace net = boost::asio;

namespace {

// "s_down,slave,disconnected": does the list name `flag`?
bool has_flag(std::string_view flags, std::string_view flag) {
    while (!flags.empty()) {
        const auto comma = flags.find(',');
        if (flags.substr(0, comma) == flag) return true;
        if (comma == std::string_view::npos) break;
        flags.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace

std::optional<int> promotable_replicas(const redis_reply& answer) {
    if (answer.type != redis_reply_type::array) return std::nullopt;
    int count = 0;
    for (const auto& replica : answer.elements) {
        if (replica.type != redis_reply_type::array || replica.elements.size() % 2 != 0) return std::nullopt;
        std::optional<std::string_view> flags, priority;
        for (std::size_t i = 0; i < replica.elements.size(); i += 2) {
            const auto& field = replica.elements[i].text;
            if (field == "flags") flags = replica.elements[i + 1].text;
            else if (field == "slave-priority" || field == "replica-priority") priority = replica.elements[i + 1].text;
        }
        if (!flags) return std::nullopt;
        if (has_flag(*flags, "s_down") || has_flag(*flags, "o_down") || has_flag(*flags, "disconnected")) continue;
        if (priority == std::string_view("0")) continue;  // never promoted
        ++count;
    }
    return count;
}

// One connection to one sentinel at a time, kept between rounds; a sentinel that fails a round
// is dropped for the next one, and the round goes on there.
class redis_replica_census::impl : public std::enable_shared_from_this<impl> {
public:
    impl(const net::any_io_executor& executor, redis_sentinel_settings settings)
        : executor_(executor), settings_(std::move(settings)) {}

    void count(count_handler handler) {
        if (closed_ || settings_.sentinels.empty()) {
            net::post(executor_, [handler = std::move(handler)] { handler(redis_error::closed, 0); });
            return;
        }
        waiters_.push_back(std::move(handler));
        if (waiters_.size() > 1) return;  // a round is under way; it answers everyone
        ask(0);
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        ++generation_;
        if (conn_) conn_->close();
        conn_.reset();
        finish(redis_error::closed, 0);
    }

private:
    void ask(std::size_t tried) {
        if (tried >= settings_.sentinels.size()) return finish(redis_error::no_master, 0);
        if (!conn_) {
            redis_client_options options;
            options.log_name = "sentinel census";
            options.log_at_info = false;
            options.url.endpoint = settings_.sentinels[index_];
            options.url.username = settings_.username;
            options.url.password = settings_.password;
            options.url.database = 0;  // sentinels have no databases
            options.connect_timeout = settings_.query_timeout;
            options.reconnect_delay_min = settings_.watch_retry_min;
            options.reconnect_delay_max = settings_.watch_retry_max;
            conn_ = redis_connection::create(executor_, options);
            conn_->start();
        }
        const auto generation = ++generation_;
        conn_->command({"SENTINEL", "REPLICAS", settings_.master_name}, settings_.query_timeout,
                       [weak = weak_from_this(), generation, tried](std::error_code ec, redis_reply reply) {
                           auto self = weak.lock();
                           if (!self || self->generation_ != generation) return;
                           const auto counted = ec ? std::nullopt : promotable_replicas(reply);
                           if (counted) return self->finish({}, *counted);
                           // This sentinel failed (or does not know the master): the next one.
                           self->conn_->close();
                           self->conn_.reset();
                           self->index_ = (self->index_ + 1) % self->settings_.sentinels.size();
                           self->ask(tried + 1);
                       });
    }

    void finish(std::error_code ec, int promotable) {
        auto waiters = std::move(waiters_);
        waiters_.clear();
        for (auto& waiter : waiters) {
            net::post(executor_, [waiter = std::move(waiter), ec, promotable] { waiter(ec, promotable); });
        }
    }

    net::any_io_executor executor_;
    redis_sentinel_settings settings_;
    std::size_t index_ = 0;  // the sentinel asked first: the last one that answered
    std::shared_ptr<redis_connection> conn_;
    std::uint64_t generation_ = 0;
    std::vector<count_handler> waiters_;
    bool closed_ = false;
};

std::shared_ptr<redis_replica_census> redis_replica_census::create(const net::any_io_executor& executor,
                                                                   redis_sentinel_settings settings) {
    return std::shared_ptr<redis_replica_census>(
        new redis_replica_census(std::make_shared<impl>(executor, std::move(settings))));
}

redis_replica_census::redis_replica_census(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
redis_replica_census::~redis_replica_census() { impl_->close(); }

void redis_replica_census::count(count_handler handler) { impl_->count(std::move(handler)); }
void redis_replica_census::close() { impl_->close(); }

}  // namespace voice_broker
