#include "voice_broker/session_service.hpp"

#include "voice_broker/api_response.hpp"
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
#include <spdlog/spdlog.h>

#include <atomic>
#include <unordered_map>

namespace voice_broker {

namespace net = boost::asio;

namespace {

// A stats answer published for the router, and until when it may be served.
//
// Staleness rule.  The copy is withdrawn, on the strand, as soon as anything that stats shows
// and that is not a function of time changes: the number of holders or of queued visitors, an
// admission or an end (the session list, today's counters), a reload (limits, cost).
// after_change() does it before it pushes anything and before the answer to whatever made the
// change is sent, so nobody who learnt of a change can then read a copy from before it.  What is
// left is time itself: uptimeSeconds, each session's remainingSeconds and today's minutes and
// cost.  So the copy is served only until the next whole second of uptime, where uptimeSeconds
// changes (it is therefore always exact), and never past the broker's next deadline, where an
// expiry or an abandonment may change who holds a slot.  remainingSeconds, minutesUsed and
// estimatedCostUsd are thus less than a second old, like an answer that took that long to
// arrive; who is active or queued is never wrong.
struct stats_snapshot {
    http_response answer;  // body and header lines are shared: serving it copies two pointers
    steady_time fresh_until;
};

// What stats shows besides time, as the service can tell cheaply that it changed.
struct stats_inputs {
    std::size_t active = 0;
    std::size_t queued = 0;
    std::uint64_t changes = 0;  // admissions, ends and reloads so far
    bool operator==(const stats_inputs&) const = default;
};

class service_impl final : public session_service {
public:
    service_impl(net::io_context& ioc, const config& settings, metrics& stats, std::shared_ptr<realtime_upstream> upstream,
                 std::function<steady_time()> read_clock)
        : read_clock_(std::move(read_clock)),
          strand_(net::make_strand(ioc)),
          timer_(strand_),
          settings_(settings),
          metrics_(stats),
          upstream_(std::move(upstream)),
          broker_(settings.session),
          usage_(settings.cost_per_minute_usd),
          clock_(wall_clock_mapping::now()),
          started_at_(read_clock_()) {}

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
            const auto id = self->broker_.entry_id(ticket);
            if (!id) return;
            auto it = self->channels_.find(*id);
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
            ++self->stats_changes_;
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

    std::optional<http_response> fresh_stats_answer() const override {
        const auto snapshot = stats_snapshot_.load(std::memory_order_acquire);
        if (!snapshot || now() >= snapshot->fresh_until) return std::nullopt;
        return snapshot->answer;
    }

private:
    std::shared_ptr<service_impl> self() { return std::static_pointer_cast<service_impl>(shared_from_this()); }
    steady_time now() const { return read_clock_(); }

    void on_request(const http_request& req, std::function<void(http_response)>& respond) {
        session_api_context ctx{broker_, usage_, admin_throttle_, settings_, clock_, now(), started_at_,
                                call_ids_, [] { return make_ticket(); }, shutting_down_};
        auto outcome = handle_session_api(req, ctx);
        after_change();
        if (!outcome.upstream) {
            if (is_stats_request(req)) publish_stats(outcome.response, ctx.now);
            return respond(std::move(outcome.response));
        }
        start_upstream(std::move(*outcome.upstream), std::move(respond));
    }

    // Keeps a copy of this stats answer, built at `built_at`, for fresh_stats_answer().
    void publish_stats(http_response& answer, steady_time built_at) {
        answer.shared_body = std::make_shared<const std::string>(std::move(answer.body));
        answer.body.clear();
        // Its headers rendered once too: serving the copy then allocates nothing.
        std::string lines;
        for (const auto& [name, value] : answer.headers) lines.append(name).append(": ").append(value).append("\r\n");
        answer.prepared_head = std::make_shared<const std::string>(std::move(lines));
        answer.headers.clear();
        const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(built_at - started_at_);
        auto fresh_until = started_at_ + uptime + std::chrono::seconds{1};
        if (const auto deadline = broker_.next_deadline()) fresh_until = std::min(fresh_until, *deadline);
        stats_snapshot_.store(std::make_shared<const stats_snapshot>(stats_snapshot{answer, fresh_until}),
                              std::memory_order_release);
        published_for_ = current_stats_inputs();
    }

    stats_inputs current_stats_inputs() const {
        return {broker_.active_count(), broker_.queue_length(), stats_changes_};
    }

    // See stats_snapshot: called after every change, on the strand.
    void withdraw_stale_stats() {
        if (!published_for_ || *published_for_ == current_stats_inputs()) return;
        stats_snapshot_.store(nullptr, std::memory_order_release);
        published_for_.reset();
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
        channels_[*broker_.entry_id(ticket)].push_back(channel);
        after_change();
        if (const auto s = broker_.status(ticket, t)) push_status(*s);
    }

    // Drains the broker's events into pushes, hang-ups and metrics, then re-arms the timer.
    void after_change() {
        bool queue_changed = false;
        const auto t = now();
        auto events = broker_.take_events();
        for (const auto& ev : events) {
            if (ev.what == broker_event::kind::admitted || ev.what == broker_event::kind::ended) ++stats_changes_;
        }
        withdraw_stale_stats();  // before any push below can tell a visitor what changed
        for (auto& ev : events) {
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
                push(ev.entry_id, std::make_shared<const std::string>(msg.dump()), false);
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
        push(ev.entry_id, std::make_shared<const std::string>(msg.dump()), false);
        if (auto it = channels_.find(ev.entry_id); it != channels_.end()) {
            for (auto& c : it->second) c->finish();
            channels_.erase(it);
        }
    }

    // One pass over the queue; a visitor's channels are found by entry id (no string hashing) and
    // the document is rendered once per visitor into one string (no JSON objects).
    void broadcast_queue(steady_time t) {
        if (channels_.empty()) return;
        const status_renderer renderer(broker_.limits(), clock_);
        broker_.for_each_queued_status(t, [&](const entry_status& s) {
            const auto it = channels_.find(s.entry_id);
            if (it == channels_.end()) return;
            const auto msg = std::make_shared<const std::string>(renderer.render(s));
            for (auto& c : it->second) c->push(msg, true);
        });
    }

    void push_status(const entry_status& s) {
        auto it = channels_.find(s.entry_id);
        if (it == channels_.end()) return;
        const auto msg = std::make_shared<const std::string>(status_renderer(broker_.limits(), clock_).render(s));
        for (auto& c : it->second) c->push(msg, true);
    }

    void push(std::uint64_t entry_id, std::shared_ptr<const std::string> msg, bool replaceable) {
        auto it = channels_.find(entry_id);
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

    std::function<steady_time()> read_clock_;
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
    std::unordered_map<std::uint64_t, std::vector<std::shared_ptr<live_channel>>> channels_;  // by entry id
    call_registry call_ids_;
    std::optional<steady_time> armed_for_;
    bool shutting_down_ = false;
    // The stats answer for the router (any thread reads it), and what it was built from.
    std::atomic<std::shared_ptr<const stats_snapshot>> stats_snapshot_;
    std::optional<stats_inputs> published_for_;
    std::uint64_t stats_changes_ = 0;
};

}  // namespace

std::shared_ptr<session_service> session_service::create(net::io_context& ioc, const config& settings, metrics& stats,
                                                         std::shared_ptr<realtime_upstream> upstream) {
    return create(ioc, settings, stats, std::move(upstream), [] { return std::chrono::steady_clock::now(); });
}

std::shared_ptr<session_service> session_service::create(net::io_context& ioc, const config& settings, metrics& stats,
                                                         std::shared_ptr<realtime_upstream> upstream,
                                                         std::function<steady_time()> clock) {
    return std::make_shared<service_impl>(ioc, settings, stats, std::move(upstream), std::move(clock));
}

}  // namespace voice_broker
