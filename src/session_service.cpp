#include "voice_broker/session_service.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/realtime_upstream.hpp"
#include "voice_broker/session_api.hpp"
#include "voice_broker/session_broker.hpp"
#include "voice_broker/ticket.hpp"
#include "voice_broker/usage_tracker.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

#include <unordered_map>

namespace voice_broker {

namespace net = boost::asio;

namespace {

class service_impl final : public session_service {
public:
    service_impl(net::io_context& ioc, const config& settings, metrics& stats, std::shared_ptr<realtime_upstream> upstream)
        : strand_(net::make_strand(ioc)),
          timer_(strand_),
          settings_(settings),
          metrics_(stats),
          upstream_(std::move(upstream)),
          broker_(settings.session),
          usage_(settings.cost_per_minute_usd),
          clock_(wall_clock_mapping::now()),
          started_at_(std::chrono::steady_clock::now()) {}

    void handle(http_request req, std::function<void(http_response)> respond) override {
        net::post(strand_, [self = self(), req = std::move(req), respond = std::move(respond)]() mutable {
            self->on_request(req, respond);
        });
    }

    void open_channel(std::string ticket, std::shared_ptr<live_channel> channel) override {
        net::post(strand_, [self = self(), ticket = std::move(ticket), channel = std::move(channel)] {
            self->on_open_channel(ticket, channel);
        });
    }

    void close_channel(std::string ticket, live_channel* channel) override {
        net::post(strand_, [self = self(), ticket = std::move(ticket), channel] {
            auto it = self->channels_.find(ticket);
            if (it == self->channels_.end()) return;
            auto& list = it->second;
            const auto removed = std::erase_if(list, [channel](const auto& c) { return c.get() == channel; });
            if (list.empty()) self->channels_.erase(it);
            if (removed == 0) return;
            self->broker_.channel_closed(ticket, self->now());
            self->after_change();
        });
    }

    void channel_heartbeat(std::string ticket) override {
        net::post(strand_, [self = self(), ticket = std::move(ticket)] {
            self->broker_.heartbeat(ticket, self->now());
            self->after_change();
        });
    }

    void reload(const config& settings) override {
        net::post(strand_, [self = self(), session = settings.session, cost = settings.cost_per_minute_usd,
                            admin = settings.admin_token] {
            self->settings_.session = session;
            self->settings_.cost_per_minute_usd = cost;
            self->settings_.admin_token = admin;
            self->usage_.set_cost_per_minute(cost);
            self->broker_.reload(session, self->now());
            self->after_change();
            spdlog::info("session limits reloaded: {} slot(s), {} s sessions, queue of {}", session.max_concurrent_users,
                         session.session_duration.count(), session.max_queue_length);
        });
    }

    void shutdown(std::function<void()> done) override {
        net::post(strand_, [self = self(), done = std::move(done)] {
            self->shutting_down_ = true;
            self->broker_.shutdown(self->now());
            self->after_change();
            self->timer_.cancel();
            done();
        });
    }

private:
    std::shared_ptr<service_impl> self() { return std::static_pointer_cast<service_impl>(shared_from_this()); }
    steady_time now() const { return std::chrono::steady_clock::now(); }

    void on_request(const http_request& req, std::function<void(http_response)>& respond) {
        session_api_context ctx{broker_, usage_, admin_throttle_, settings_, clock_, now(), started_at_,
                                call_ids_, [] { return make_ticket(); }, shutting_down_};
        auto outcome = handle_session_api(req, ctx);
        after_change();
        if (!outcome.upstream) return respond(std::move(outcome.response));
        start_upstream(std::move(*outcome.upstream), std::move(respond));
    }

    void start_upstream(upstream_work work, std::function<void(http_response)> respond) {
        if (!upstream_) {
            return respond(api_error(503, "not_configured",
                                     "OpenAI is not configured on this server: the operator must set OPENAI_API_KEY."));
        }
        if (work.what == upstream_work::kind::mint_token) {
            upstream_->mint_token(work.ttl, [self = self(), respond = std::move(respond)](http_response res) mutable {
                net::post(self->strand_, [self, res = std::move(res), respond = std::move(respond)]() mutable {
                    if (res.status == 200) self->metrics_.tokens_minted.fetch_add(1, std::memory_order_relaxed);
                    respond(std::move(res));
                });
            });
            return;
        }
        upstream_->relay_offer(std::move(work.sdp_offer), [self = self(), ticket = work.ticket,
                                                            respond = std::move(respond)](
                                                               realtime_upstream::call_result result) mutable {
            net::post(self->strand_, [self, ticket = std::move(ticket), result = std::move(result),
                                      respond = std::move(respond)]() mutable {
                if (result.call_id) {
                    const auto s = self->broker_.status(ticket, self->now());
                    if (s && s->state == entry_state::active) {
                        self->call_ids_[ticket].push_back(*result.call_id);
                    } else {
                        // The session ended while the call was being opened: end the call too.
                        self->upstream_->hang_up(*result.call_id);
                        self->metrics_.hangups_sent.fetch_add(1, std::memory_order_relaxed);
                    }
                }
                respond(std::move(result.response));
            });
        });
    }

    void on_open_channel(const std::string& ticket, const std::shared_ptr<live_channel>& channel) {
        const auto t = now();
        if (!broker_.channel_opened(ticket, t)) {
            const auto s = broker_.status(ticket, t);
            nlohmann::json msg = s ? nlohmann::json{{"type", "ended"}, {"reason", to_string(s->reason)}}
                                   : nlohmann::json{{"type", "error"},
                                                    {"error",
                                                     {{"code", "unknown_ticket"},
                                                      {"message", "This ticket is unknown or has expired; join again."}}}};
            channel->push(std::make_shared<const std::string>(msg.dump()), false);
            channel->finish();
            return;
        }
        channels_[ticket].push_back(channel);
        after_change();
        if (const auto s = broker_.status(ticket, t)) push_status(*s);
    }

    // Drains the broker's events into pushes, hang-ups and metrics, then re-arms the timer.
    void after_change() {
        bool queue_changed = false;
        const auto t = now();
        for (auto& ev : broker_.take_events()) {
            switch (ev.what) {
            case broker_event::kind::admitted: {
                metrics_.admissions.fetch_add(1, std::memory_order_relaxed);
                metrics_.queue_wait_seconds.observe(std::chrono::duration<double>(t - ev.waited_since).count());
                usage_.session_started(clock_.to_wall(t));
                spdlog::info("session: visitor admitted after waiting {} s",
                             std::chrono::duration_cast<std::chrono::seconds>(t - ev.waited_since).count());
                if (const auto s = broker_.status(ev.ticket, t)) push_status(*s);
                break;
            }
            case broker_event::kind::warning: {
                metrics_.warnings_sent.fetch_add(1, std::memory_order_relaxed);
                const auto secs = ev.seconds_left.count();
                nlohmann::json msg = {{"type", "warning"}, {"minutesLeft", (secs + 59) / 60}, {"remainingSeconds", secs}};
                push(ev.ticket, std::make_shared<const std::string>(msg.dump()), false);
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

    void on_ended(const broker_event& ev, steady_time t) {
        metrics_.ends_by_reason[static_cast<std::size_t>(ev.reason)].fetch_add(1, std::memory_order_relaxed);
        if (ev.was_active) {
            const auto talked = std::chrono::duration_cast<std::chrono::milliseconds>(t - ev.started_at);
            usage_.session_ended(clock_.to_wall(t), talked);
            spdlog::info("session: ended ({}) after {} s", to_string(ev.reason), talked.count() / 1000);
        }
        // The one path every end takes: the upstream call is hung up here.
        if (auto calls = call_ids_.find(ev.ticket); calls != call_ids_.end()) {
            for (auto& call_id : calls->second) {
                if (!upstream_) break;
                upstream_->hang_up(call_id);
                metrics_.hangups_sent.fetch_add(1, std::memory_order_relaxed);
            }
            call_ids_.erase(calls);
        }
        nlohmann::json msg = {{"type", "ended"}, {"reason", to_string(ev.reason)}};
        push(ev.ticket, std::make_shared<const std::string>(msg.dump()), false);
        if (auto it = channels_.find(ev.ticket); it != channels_.end()) {
            for (auto& c : it->second) c->finish();
            channels_.erase(it);
        }
    }

    void broadcast_queue(steady_time t) {
        const auto& limits = broker_.limits();
        for (const auto& s : broker_.queued_statuses(t)) {
            auto it = channels_.find(s.ticket);
            if (it == channels_.end()) continue;
            auto doc = status_json(s, limits, clock_);
            doc["type"] = "status";
            auto msg = std::make_shared<const std::string>(doc.dump());
            for (auto& c : it->second) c->push(msg, true);
        }
    }

    void push_status(const entry_status& s) {
        auto it = channels_.find(s.ticket);
        if (it == channels_.end()) return;
        auto doc = status_json(s, broker_.limits(), clock_);
        doc["type"] = "status";
        auto msg = std::make_shared<const std::string>(doc.dump());
        for (auto& c : it->second) c->push(msg, true);
    }

    void push(const std::string& ticket, std::shared_ptr<const std::string> msg, bool replaceable) {
        auto it = channels_.find(ticket);
        if (it == channels_.end()) return;
        for (auto& c : it->second) c->push(msg, replaceable);
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
            self->broker_.advance(self->now());
            self->after_change();
        });
    }

    net::strand<net::io_context::executor_type> strand_;
    net::steady_timer timer_;
    config settings_;
    metrics& metrics_;
    std::shared_ptr<realtime_upstream> upstream_;
    session_broker broker_;
    usage_tracker usage_;
    auth_throttle admin_throttle_;
    wall_clock_mapping clock_;
    steady_time started_at_;
    std::unordered_map<std::string, std::vector<std::shared_ptr<live_channel>>> channels_;
    call_registry call_ids_;
    std::optional<steady_time> armed_for_;
    bool shutting_down_ = false;
};

}  // namespace

std::shared_ptr<session_service> session_service::create(net::io_context& ioc, const config& settings, metrics& stats,
                                                         std::shared_ptr<realtime_upstream> upstream) {
    return std::make_shared<service_impl>(ioc, settings, stats, std::move(upstream));
}

}  // namespace voice_broker
