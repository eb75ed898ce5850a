// redis_store: the Redis session store's life: making it (the connection, the subscriber, the
// Sentinel locator when there is one), closing it, and the handle through which the service owns
// it.  The store itself is redis_store_impl (redis_store_impl.hpp), defined by concept across the
// redis_store_*.cpp files; this file also holds the embedded Lua script and the small helpers
// they share.
#include "redis_store.hpp"

#include "redis_store_impl.hpp"
#include "redis_store_lua.hpp"  // generated from redis_store.lua at configure time
#include "voice_broker/redis_error.hpp"

#include <spdlog/spdlog.h>

#include <cctype>

namespace voice_broker {

namespace net = boost::asio;

const std::string& redis_store_script() {
    static const std::string source(redis_store_lua);
    return source;
}

namespace redis_store_detail {

using namespace std::chrono_literals;

end_reason reason_from(const std::string& r) {
    for (auto why : all_end_reasons) {
        if (to_string(why) == r) return why;
    }
    return end_reason::left;
}

void redis_store_impl::start() {
    metrics_.store_durable_replicas.store(wait_replicas_, std::memory_order_relaxed);
    redis_client_options client;
    if (auto parsed = redis_url::parse(options_.settings.redis_url); std::holds_alternative<redis_url>(parsed)) {
        client.url = std::get<redis_url>(parsed);
    } else {
        throw std::runtime_error("REDIS_URL: " + std::get<std::string>(parsed));
    }
    if (!options_.settings.sentinels.empty()) {
        auto list = parse_sentinel_list(options_.settings.sentinels);
        if (auto* err = std::get_if<std::string>(&list)) throw std::runtime_error("REDIS_SENTINELS: " + *err);
        redis_sentinel_settings s;
        s.sentinels = std::get<std::vector<redis_endpoint>>(list);
        s.master_name = options_.settings.sentinel_master;
        s.password = options_.settings.sentinel_password;
        locator_ = redis_master_locator::create(strand_, s);
        locator_->start();
        client.sentinel = locator_;
        if (wait_replicas_ > 0) census_ = redis_replica_census::create(strand_, s);
    }
    client.client_name = "voice-broker:" + sanitized_instance();
    client.log_name = "store";
    conn_ = redis_connection::create(strand_, client);
    client.log_name = "events";
    sub_ = redis_subscriber::create(strand_, client);
    std::weak_ptr<redis_store_impl> weak = shared_from_this();
    sub_->on_message([weak](const redis_message& m) {
        if (auto self = weak.lock()) self->on_message(m.payload);
    });
    sub_->on_resync([weak] {
        if (auto self = weak.lock()) self->resync();
    });
    conn_->add_state_observer([weak](redis_link_state state) {
        if (auto self = weak.lock()) self->on_link(state);
    });
    sub_->subscribe(prefix_ + "events");
    conn_->start();
    sub_->start();
    arm_tick();
}

void redis_store_impl::close() {
    closing_ = true;
    deadline_timer_.cancel();
    tick_timer_.cancel();
    lease_timer_.cancel();
    gap_timer_.cancel();
    if (sub_) sub_->close();
    if (conn_) conn_->close();
    if (census_) census_->close();
    if (locator_) locator_->close();
}

void redis_store_impl::shutdown(bool) {
    // The sessions live on in Redis; the other instances take over this one's visitors.
    closing_ = true;
    deadline_timer_.cancel();
    tick_timer_.cancel();
    lease_timer_.cancel();
    gap_timer_.cancel();
    if (conn_ && conn_->is_up()) conn_->command({"ZREM", prefix_ + "i", instance_}, 500ms, [](std::error_code, redis_reply) {});
}

std::string redis_store_impl::sanitized_instance() const {
    std::string out;
    for (char c : instance_) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
    return out;
}

namespace {

// The store is shared (its callbacks hold it weakly); the service owns it through this handle.
class redis_store_handle final : public session_store {
public:
    explicit redis_store_handle(std::shared_ptr<redis_store_impl> impl) : impl_(std::move(impl)) {}
    ~redis_store_handle() override { impl_->close(); }

    void set_listener(store_listener* l) override { impl_->set_listener(l); }
    void join(join_request r, done<join_outcome> c) override { impl_->join(std::move(r), std::move(c)); }
    void status(const std::string& t, done<std::optional<entry_status>> c) override { impl_->status(t, std::move(c)); }
    void heartbeat(const std::string& t, done<std::optional<entry_status>> c) override { impl_->heartbeat(t, std::move(c)); }
    void leave(const std::string& t, done<std::optional<entry_status>> c) override { impl_->leave(t, std::move(c)); }
    void force_end_all(done<std::size_t> c) override { impl_->force_end_all(std::move(c)); }
    void reserve_token(const std::string& t, int m, done<token_reservation> c) override { impl_->reserve_token(t, m, std::move(c)); }
    void record_call(std::uint64_t id, const std::string& call, done<call_recording> c) override {
        impl_->record_call(id, call, std::move(c));
    }
    void stats(done<store_stats> c) override { impl_->stats(std::move(c)); }
    void statuses(std::vector<std::uint64_t> ids, done<std::vector<entry_status>> c) override {
        impl_->statuses(std::move(ids), std::move(c));
    }
    void channel_opened(const std::string& t, done<channel_opening> c) override { impl_->channel_opened(t, std::move(c)); }
    void channel_closed(std::uint64_t id) override { impl_->channel_closed(id); }
    void channel_heartbeat(std::uint64_t id) override { impl_->channel_heartbeat(id); }
    void hang_up_done(const std::string& call) override { impl_->hang_up_done(call); }
    void admin_view(done<store_admin_view> c) override { impl_->admin_view(std::move(c)); }
    void end_session(std::uint64_t id, end_reason why, done<bool> c) override { impl_->end_session(id, why, std::move(c)); }
    void set_admission_gate(session_broker::admission_gate g) override { impl_->set_admission_gate(std::move(g)); }
    void recheck_admissions() override { impl_->recheck_admissions(); }
    shared_budget* budget_keeper() override { return impl_.get(); }
    void remove_queued(std::uint64_t id, done<bool> c) override { impl_->remove_queued(id, std::move(c)); }
    void set_paused(bool p, done<bool> c) override { impl_->set_paused(p, std::move(c)); }
    void change_limits(limits_change l, done<session_limits> c) override { impl_->change_limits(std::move(l), std::move(c)); }
    void reload(const session_limits& l) override { impl_->reload(l); }
    const session_limits& limits() const override { return impl_->limits(); }
    void for_each_queued_status(const std::function<void(const entry_status&)>& f) const override { impl_->for_each_queued_status(f); }
    std::size_t active_count() const override { return impl_->active_count(); }
    std::size_t queue_length() const override { return impl_->queue_length(); }
    std::size_t entry_count() const override { return impl_->entry_count(); }
    std::optional<steady_time> stats_fresh_until() const override { return impl_->stats_fresh_until(); }
    bool available() const override { return impl_->available(); }
    bool paused_by_operator() const override { return impl_->paused_by_operator(); }
    void shutdown(bool end_sessions) override { impl_->shutdown(end_sessions); }

private:
    std::shared_ptr<redis_store_impl> impl_;
};

}  // namespace
}  // namespace redis_store_detail

std::unique_ptr<session_store> make_redis_store(const net::any_io_executor& strand, const session_limits& limits,
                                                std::function<steady_time()> clock, redis_store_options options,
                                                metrics& counters) {
    auto impl = std::make_shared<redis_store_detail::redis_store_impl>(strand, limits, std::move(clock), std::move(options), counters);
    impl->start();
    return std::make_unique<redis_store_detail::redis_store_handle>(std::move(impl));
}

}  // namespace voice_broker
