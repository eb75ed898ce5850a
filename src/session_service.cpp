#include "voice_broker/session_service.hpp"

#include "published_stats.hpp"
#include "voice_broker/api_response.hpp"
#include "voice_broker/auth_throttle.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/realtime_upstream.hpp"
#include "voice_broker/session_api.hpp"
#include "voice_broker/session_broker.hpp"
#include "voice_broker/status_renderer.hpp"
#include "voice_broker/ticket.hpp"
#include "voice_broker/usage_tracker.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <unordered_map>
#include <vector>

namespace voice_broker {

namespace net = boost::asio;

namespace {

std::shared_ptr<const std::string> shared_text(std::string text) {
    return std::make_shared<const std::string>(std::move(text));
}

std::shared_ptr<const std::string> ended_message(end_reason why) {
    return shared_text(nlohmann::json{{"type", "ended"}, {"reason", to_string(why)}}.dump());
}

class service_impl final : public session_service {
public:
    service_impl(net::io_context& ioc, const config& settings, metrics& counters, std::shared_ptr<realtime_upstream> upstream,
                 std::function<steady_time()> clock)
        : clock_(std::move(clock)),
          strand_(net::make_strand(ioc)),
          timer_(strand_),
          settings_(settings),
          metrics_(counters),
          upstream_(std::move(upstream)),
          broker_(settings.session),
          usage_(settings.cost_per_minute_usd),
          wall_clock_(wall_clock_mapping::now()),
          started_at_(clock_()) {}

    void handle(http_request req, responder respond) override {
        on_strand([req = std::move(req), respond = std::move(respond)](service_impl& self) mutable {
            self.on_request(req, respond);
        });
    }

    channel_id open_channel(std::string ticket, std::shared_ptr<live_channel> channel) override {
        const auto id = next_channel_id_.fetch_add(1, std::memory_order_relaxed);
        on_strand([id, ticket = std::move(ticket), channel = std::move(channel)](service_impl& self) {
            self.on_open_channel(id, ticket, channel);
        });
        return id;
    }

    void channel_message(channel_id id, std::string text) override {
        on_strand([id, text = std::move(text)](service_impl& self) {
            const auto msg = nlohmann::json::parse(text, nullptr, false);
            if (msg.is_discarded() || !msg.is_object() || msg.value("type", "") != "heartbeat") return;
            const auto entry = self.channel_entries_.find(id);
            if (entry == self.channel_entries_.end()) return;
            self.broker_.heartbeat(entry->second, self.now());
            self.after_change();
        });
    }

    void close_channel(channel_id id) override {
        on_strand([id](service_impl& self) { self.on_close_channel(id); });
    }

    void reload(const config& settings) override {
        on_strand([session = settings.session, cost = settings.cost_per_minute_usd,
                   admin = settings.admin_token](service_impl& self) {
            self.settings_.session = session;
            self.settings_.cost_per_minute_usd = cost;
            self.settings_.admin_token = admin;
            self.usage_.set_cost_per_minute(cost);
            ++self.stats_changes_;
            self.broker_.reload(session, self.now());
            self.after_change();
            spdlog::info("session limits reloaded: {} slot(s), {} s sessions, queue of {}", session.max_concurrent_users,
                         session.session_duration.count(), session.max_queue_length);
        });
    }

    void shutdown(std::function<void()> done) override {
        on_strand([done = std::move(done)](service_impl& self) {
            self.shutting_down_ = true;
            self.broker_.shutdown(self.now());
            self.after_change();
            self.timer_.cancel();
            done();
        });
    }

    std::optional<http_response> fresh_stats_answer() const override { return published_stats_.fresh(now()); }

private:
    std::shared_ptr<service_impl> self() { return std::static_pointer_cast<service_impl>(shared_from_this()); }
    steady_time now() const { return clock_(); }

    // Runs `work` on the strand.  An exception escaping it is caught here, at the boundary, and
    // logged: the broker's owner keeps running for everyone else (a request's responder, dropped
    // by the unwinding, answers 500 on its own).
    template <class Work>
    void on_strand(Work work) {
        net::post(strand_, [self = self(), work = std::move(work)]() mutable {
            try {
                work(*self);
            } catch (const std::exception& e) {
                spdlog::error("session service: {}; carrying on", e.what());
            }
        });
    }

    void on_request(const http_request& req, responder& respond) {
        session_api_context ctx{broker_,     usage_,   admin_throttle_, settings_,
                                wall_clock_, now(),    started_at_,     call_ids_,
                                [] { return make_ticket(); }, shutting_down_};
        auto outcome = handle_session_api(req, ctx);
        after_change();
        if (!outcome.upstream) {
            if (is_stats_request(req)) publish_stats(outcome.response, ctx.now);
            return respond(std::move(outcome.response));
        }
        start_upstream(std::move(*outcome.upstream), std::move(respond));
    }

    stats_inputs current_stats_inputs() const { return {broker_.active_count(), broker_.queue_length(), stats_changes_}; }

    void publish_stats(http_response& answer, steady_time built_at) {
        const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(built_at - started_at_);
        auto fresh_until = started_at_ + uptime + std::chrono::seconds{1};
        if (const auto deadline = broker_.next_deadline()) fresh_until = std::min(fresh_until, *deadline);
        published_stats_.publish(answer, current_stats_inputs(), fresh_until);
    }

    void start_upstream(upstream_work work, responder respond_now) {
        if (!upstream_) return respond_now(openai_not_configured());
        // The upstream's callbacks are copyable functions; the responder is shared with them, and
        // answers 500 by itself should the upstream drop the callback without calling it.
        auto respond = std::make_shared<responder>(std::move(respond_now));
        if (work.what == upstream_work::kind::mint_token) {
            upstream_->mint_token(work.ttl, [self = self(), respond](http_response res) {
                net::post(self->strand_, [self, res = std::move(res), respond]() mutable {
                    if (res.status == 200) self->metrics_.tokens_minted.fetch_add(1, std::memory_order_relaxed);
                    (*respond)(std::move(res));
                });
            });
            return;
        }
        upstream_->relay_offer(std::move(work.sdp_offer), [self = self(), entry_id = work.entry_id,
                                                            respond](realtime_upstream::call_result result) {
            net::post(self->strand_, [self, entry_id, result = std::move(result), respond]() mutable {
                if (result.call_id) self->adopt_relayed_call(entry_id, *result.call_id);
                (*respond)(std::move(result.response));
            });
        });
    }

    // A call the server opened for this session: kept for the hang-up, or, when the session ended
    // while the call was being opened, ended at once.
    void adopt_relayed_call(std::uint64_t entry_id, const std::string& call_id) {
        if (broker_.holds_slot(entry_id)) {
            call_ids_[entry_id].push_back(call_id);
            return;
        }
        upstream_->hang_up(call_id);
        metrics_.hangups_sent.fetch_add(1, std::memory_order_relaxed);
    }

    void on_open_channel(channel_id id, const std::string& ticket, const std::shared_ptr<live_channel>& channel) {
        const auto opening = broker_.channel_opened(ticket, now());
        switch (opening.what) {
        case channel_opening::kind::unknown:
            channel->push(shared_text(nlohmann::json{{"type", "error"},
                                                     {"error",
                                                      {{"code", "unknown_ticket"},
                                                       {"message", "This ticket is unknown or has expired; join again."}}}}
                                          .dump()),
                          false);
            return channel->finish();
        case channel_opening::kind::ended:
            channel->push(ended_message(opening.status.reason), false);
            return channel->finish();
        case channel_opening::kind::opened:
            break;
        }
        const auto entry_id = opening.status.entry_id;
        channel_entries_.emplace(id, entry_id);
        channels_[entry_id].push_back({id, channel});
        after_change();
        push_status(opening.status);
    }

    void on_close_channel(channel_id id) {
        const auto entry = channel_entries_.find(id);
        if (entry == channel_entries_.end()) return;
        const auto entry_id = entry->second;
        channel_entries_.erase(entry);
        if (auto it = channels_.find(entry_id); it != channels_.end()) {
            std::erase_if(it->second, [id](const open_channel_ref& c) { return c.id == id; });
            if (it->second.empty()) channels_.erase(it);
        }
        broker_.channel_closed(entry_id, now());
        after_change();
    }

    // Drains the broker's events into pushes, hang-ups and metrics, then re-arms the timer.
    void after_change() {
        bool queue_changed = false;
        const auto t = now();
        auto events = broker_.take_events();
        for (const auto& ev : events) {
            if (ev.what == broker_event::kind::admitted || ev.what == broker_event::kind::ended) ++stats_changes_;
        }
        published_stats_.withdraw_if_changed(current_stats_inputs());  // before any push can tell of a change
        for (const auto& ev : events) {
            switch (ev.what) {
            case broker_event::kind::admitted:
                on_admitted(ev, t);
                break;
            case broker_event::kind::warning: {
                metrics_.warnings_sent.fetch_add(1, std::memory_order_relaxed);
                const auto secs = ev.seconds_left.count();
                push(ev.entry_id,
                     shared_text(nlohmann::json{{"type", "warning"}, {"minutesLeft", (secs + 59) / 60}, {"remainingSeconds", secs}}
                                     .dump()),
                     false);
                break;
            }
            case broker_event::kind::ended:
                on_ended(ev, t);
                break;
            case broker_event::kind::queue_changed:
                queue_changed = true;
                break;
            }
        }
        if (queue_changed) broadcast_queue(t);
        metrics_.active_sessions.store(static_cast<std::int64_t>(broker_.active_count()), std::memory_order_relaxed);
        metrics_.queue_length.store(static_cast<std::int64_t>(broker_.queue_length()), std::memory_order_relaxed);
        arm_timer();
    }

    void on_admitted(const broker_event& ev, steady_time t) {
        const auto waited = t - ev.waited_since;
        metrics_.admissions.fetch_add(1, std::memory_order_relaxed);
        metrics_.queue_wait_seconds.observe(std::chrono::duration<double>(waited).count());
        usage_.session_started(wall_clock_.to_wall(t));
        spdlog::info("session: visitor admitted after waiting {} s", std::chrono::duration_cast<std::chrono::seconds>(waited).count());
        push_status(ev.status);
    }

    void on_ended(const broker_event& ev, steady_time t) {
        metrics_.ends_by_reason[static_cast<std::size_t>(ev.reason)].fetch_add(1, std::memory_order_relaxed);
        if (ev.was_active) {
            const auto talked = std::chrono::duration_cast<std::chrono::milliseconds>(t - ev.started_at);
            usage_.session_ended(wall_clock_.to_wall(t), talked);
            spdlog::info("session: ended ({}) after {} s", to_string(ev.reason), talked.count() / 1000);
        }
        // The one path every end takes: the upstream call is hung up here.
        if (auto calls = call_ids_.find(ev.entry_id); calls != call_ids_.end()) {
            for (auto& call_id : calls->second) {
                if (!upstream_) break;
                upstream_->hang_up(call_id);
                metrics_.hangups_sent.fetch_add(1, std::memory_order_relaxed);
            }
            call_ids_.erase(calls);
        }
        push(ev.entry_id, ended_message(ev.reason), false);
        if (auto it = channels_.find(ev.entry_id); it != channels_.end()) {
            for (auto& c : it->second) {
                channel_entries_.erase(c.id);
                c.channel->finish();
            }
            channels_.erase(it);
        }
    }

    // One pass over the queue; a visitor's channels are found by entry id (no string hashing) and
    // the document is rendered once per visitor into one string (no JSON objects).
    void broadcast_queue(steady_time t) {
        if (channels_.empty()) return;
        const status_renderer renderer(broker_.limits(), wall_clock_);
        broker_.for_each_queued_status(t, [&](const entry_status& s) {
            const auto it = channels_.find(s.entry_id);
            if (it == channels_.end()) return;
            const auto msg = shared_text(renderer.push(s));
            for (auto& c : it->second) c.channel->push(msg, true);
        });
    }

    void push_status(const entry_status& s) {
        auto it = channels_.find(s.entry_id);
        if (it == channels_.end()) return;
        const auto msg = shared_text(status_renderer(broker_.limits(), wall_clock_).push(s));
        for (auto& c : it->second) c.channel->push(msg, true);
    }

    void push(std::uint64_t entry_id, const std::shared_ptr<const std::string>& msg, bool replaceable) {
        auto it = channels_.find(entry_id);
        if (it == channels_.end()) return;
        for (auto& c : it->second) c.channel->push(msg, replaceable);
    }

    void arm_timer() {
        const auto next = broker_.next_deadline();
        if (next == armed_for_) return;
        armed_for_ = next;
        timer_.cancel();
        if (!next) return;
        timer_.expires_at(*next);
        timer_.async_wait([self = self(), at = *next](boost::system::error_code ec) {
            if (ec || self->armed_for_ != at) return;  // cancelled or superseded
            self->armed_for_.reset();
            try {
                self->broker_.advance(self->now());
                self->after_change();
            } catch (const std::exception& e) {
                spdlog::error("session service: {}; carrying on", e.what());
            }
        });
    }

    struct open_channel_ref {
        channel_id id;
        std::shared_ptr<live_channel> channel;
    };

    std::function<steady_time()> clock_;
    net::strand<net::io_context::executor_type> strand_;
    net::steady_timer timer_;
    config settings_;
    metrics& metrics_;
    std::shared_ptr<realtime_upstream> upstream_;
    session_broker broker_;
    usage_tracker usage_;
    auth_throttle admin_throttle_;
    wall_clock_mapping wall_clock_;
    steady_time started_at_;
    std::atomic<channel_id> next_channel_id_{1};
    std::unordered_map<std::uint64_t, std::vector<open_channel_ref>> channels_;  // by entry id
    std::unordered_map<channel_id, std::uint64_t> channel_entries_;              // channel -> entry id
    call_registry call_ids_;
    std::optional<steady_time> armed_for_;
    bool shutting_down_ = false;
    published_stats published_stats_;
    std::uint64_t stats_changes_ = 0;
};

}  // namespace

std::shared_ptr<session_service> session_service::create(net::io_context& ioc, const config& settings, metrics& counters,
                                                         std::shared_ptr<realtime_upstream> upstream) {
    return create(ioc, settings, counters, std::move(upstream), [] { return std::chrono::steady_clock::now(); });
}

std::shared_ptr<session_service> session_service::create(net::io_context& ioc, const config& settings, metrics& counters,
                                                         std::shared_ptr<realtime_upstream> upstream,
                                                         std::function<steady_time()> clock) {
    return std::make_shared<service_impl>(ioc, settings, counters, std::move(upstream), std::move(clock));
}

}  // namespace voice_broker
