#include "voice_broker/redis_connection.hpp"

#include "redis_link.hpp"
#include "voice_broker/redis_error.hpp"

#include <boost/asio/post.hpp>
#include <hiredis/async.h>

#include <deque>
#include <map>
#include <set>

namespace voice_broker {

namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

// The command queue on top of redis_link: ids in hiredis's privdata, one timer for the earliest
// deadline, and one place (complete) that runs a handler and forgets the command, so that no
// handler can run twice.
class redis_connection::impl final : public redis_link {
public:
    impl(const net::any_io_executor& executor, redis_client_options options)
        : redis_link(executor, std::move(options), "connection"), deadline_timer_(executor) {}

    void command(std::vector<std::string> args, std::chrono::milliseconds timeout, reply_handler handler) {
        if (closing()) {
            post_result(std::move(handler), redis_error::closed, {});
            return;
        }
        if (pending_.size() >= options().max_pending_commands) {
            post_result(std::move(handler), redis_error::queue_full, {});
            return;
        }
        const auto id = next_id_++;
        const auto deadline = clock_type::now() + timeout;
        pending_.emplace(id, pending_command{std::move(args), deadline, std::move(handler), false});
        deadlines_.emplace(deadline, id);
        arm_deadline(deadline);
        if (state() == redis_link_state::up && waiting_.empty()) {
            send(id);
        } else {
            waiting_.push_back(id);
        }
    }

    std::size_t pending_commands() const { return pending_.size(); }

private:
    struct pending_command {
        std::vector<std::string> args;  // emptied once sent
        clock_type::time_point deadline;
        reply_handler handler;
        bool sent = false;
    };

    static void* to_privdata(std::uint64_t id) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)); }

    void on_handshake_done() override {
        declare_up();
        while (!waiting_.empty() && context() != nullptr) {
            const auto id = waiting_.front();
            waiting_.pop_front();
            if (pending_.count(id) != 0) send(id);
        }
    }

    void on_connection_lost() override {
        // hiredis has answered every command it had with a null reply; this catches any it never took.
        std::vector<std::uint64_t> sent;
        for (const auto& [id, command] : pending_) {
            if (command.sent) sent.push_back(id);
        }
        for (const auto id : sent) complete(id, redis_error::connection_lost, {});
    }

    void on_close() override {
        deadline_timer_.cancel();
        waiting_.clear();
        while (!pending_.empty()) complete(pending_.begin()->first, redis_error::closed, {});
    }

    void send(std::uint64_t id) {
        auto& command = pending_.at(id);
        std::vector<const char*> argv;
        std::vector<std::size_t> lengths;
        argv.reserve(command.args.size());
        lengths.reserve(command.args.size());
        for (const auto& arg : command.args) {
            argv.push_back(arg.data());
            lengths.push_back(arg.size());
        }
        if (command.args.empty() ||
            redisAsyncCommandArgv(context(), &impl::on_reply, to_privdata(id), static_cast<int>(argv.size()),
                                  argv.data(), lengths.data()) != REDIS_OK) {
            complete(id, command.args.empty() ? std::error_code(redis_error::empty_command)
                                              : std::error_code(redis_error::not_connected),
                     {});
            return;
        }
        command.sent = true;
        command.args = {};
    }

    static void on_reply(redisAsyncContext* context, void* reply, void* privdata) {
        auto* link = static_cast<redis_link*>(context->data);
        if (link == nullptr) return;  // closed: on_close() answered everything
        auto* self = static_cast<impl*>(link);
        const auto id = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(privdata));
        if (reply == nullptr) {
            self->complete(id, redis_error::connection_lost, {});
            return;
        }
        auto value = to_reply(*static_cast<redisReply*>(reply));
        if (self->options().sentinel && (value.is_error("READONLY") || value.is_error("MASTERDOWN"))) {
            // The node we talk to is no longer a usable master: find the master again.
            self->drop("a command got " + value.describe() + "; locating the master again");
        }
        self->complete(id, {}, std::move(value));
    }

    void complete(std::uint64_t id, std::error_code ec, redis_reply reply) {
        const auto it = pending_.find(id);
        if (it == pending_.end()) return;  // already answered (deadline) or never ours
        auto handler = std::move(it->second.handler);
        deadlines_.erase({it->second.deadline, id});
        pending_.erase(it);
        post_result(std::move(handler), ec, std::move(reply));
    }

    void post_result(reply_handler handler, std::error_code ec, redis_reply reply) {
        net::post(executor(), [handler = std::move(handler), ec, reply = std::move(reply)]() mutable {
            handler(ec, std::move(reply));
        });
    }

    void arm_deadline(clock_type::time_point deadline) {
        if (timer_at_ && *timer_at_ <= deadline) return;
        timer_at_ = deadline;
        deadline_timer_.expires_at(deadline);
        deadline_timer_.async_wait([weak = std::weak_ptr<impl>(std::static_pointer_cast<impl>(shared_from_this()))](
                                       const boost::system::error_code& ec) {
            if (ec == net::error::operation_aborted) return;  // re-armed earlier, or closed
            if (auto self = weak.lock()) self->on_deadline();
        });
    }

    void on_deadline() {
        timer_at_.reset();
        if (closing()) return;
        const auto now = clock_type::now();
        bool stalled = false;
        while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
            const auto id = deadlines_.begin()->second;
            const bool sent = pending_.at(id).sent;
            stalled = stalled || sent;
            complete(id, sent ? redis_error::timeout : redis_error::not_connected, {});
        }
        while (!waiting_.empty() && pending_.count(waiting_.front()) == 0) waiting_.pop_front();
        if (stalled) {
            // hiredis cannot forget one command: the only way past a stalled reply is a new connection.
            drop("no reply within a command's deadline (Redis paused, overloaded or unreachable)");
        }
        if (!deadlines_.empty()) arm_deadline(deadlines_.begin()->first);
    }

    std::map<std::uint64_t, pending_command> pending_;  // waiting or in flight, by id
    std::deque<std::uint64_t> waiting_;                 // not yet sent, in order (may hold answered ids)
    std::set<std::pair<clock_type::time_point, std::uint64_t>> deadlines_;
    net::steady_timer deadline_timer_;
    std::optional<clock_type::time_point> timer_at_;
    std::uint64_t next_id_ = 1;
};

std::shared_ptr<redis_connection> redis_connection::create(const net::any_io_executor& executor,
                                                           redis_client_options options) {
    return std::shared_ptr<redis_connection>(
        new redis_connection(std::make_shared<impl>(executor, std::move(options))));
}

redis_connection::redis_connection(std::shared_ptr<impl> state) : impl_(std::move(state)) {}

redis_connection::~redis_connection() { impl_->close(); }

void redis_connection::start() { impl_->start(); }
void redis_connection::close() { impl_->close(); }
void redis_connection::reconnect() { impl_->reconnect_now(); }

void redis_connection::command(std::vector<std::string> args, std::chrono::milliseconds timeout,
                               reply_handler handler) {
    impl_->command(std::move(args), timeout, std::move(handler));
}

redis_link_state redis_connection::state() const { return impl_->state(); }
std::string redis_connection::last_error() const { return impl_->last_error(); }
std::optional<redis_endpoint> redis_connection::connected_endpoint() const { return impl_->connected_endpoint(); }
std::size_t redis_connection::pending_commands() const { return impl_->pending_commands(); }
int redis_connection::add_state_observer(state_observer observer) {
    return impl_->add_state_observer(std::move(observer));
}
void redis_connection::remove_state_observer(int id) { impl_->remove_state_observer(id); }

}  // namespace voice_broker
