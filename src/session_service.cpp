#include "voice_broker/session_service.hpp"

#include "admin_console.hpp"
#include "cost_guard.hpp"
#include "join_limits.hpp"
#include "memory_store.hpp"
#include "published_stats.hpp"
#include "store_answer.hpp"
#include "upstream_calls.hpp"
#include "visitor_channels.hpp"
#include "voice_broker/admin_auth.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/realtime_upstream.hpp"
#include "voice_broker/session_api.hpp"
#include "voice_broker/session_store.hpp"
#include "voice_broker/status_renderer.hpp"
#include "voice_broker/ticket.hpp"
#include "voice_broker/usage_tracker.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <unordered_map>
#include <vector>

namespace voice_broker {

namespace net = boost::asio;

namespace {

class service_impl final : public session_service, private store_listener {
public:
    service_impl(net::io_context& ioc, const config& settings, metrics& counters, std::shared_ptr<realtime_upstream> upstream,
                 service_options options)
        : clock_(options.clock ? std::move(options.clock) : [] { return std::chrono::steady_clock::now(); }),
          new_ticket_(options.new_ticket ? std::move(options.new_ticket) : [] { return make_ticket(); }),
          strand_(net::make_strand(ioc)),
          settings_(settings),
          metrics_(counters),
          usage_(settings.cost_per_minute_usd),
          join_limits_(settings.fair_use),
          wall_clock_(options.wall_clock.value_or(wall_clock_mapping::now())),
          started_at_(clock_()),
          channels_(settings.fair_use.channels_per_ticket),
          admin_(options.admin ? std::move(options.admin)
                               : std::make_shared<admin_auth>(settings.admin_token, settings.admin_login_lifetime)) {
        if (options.make_store) {
            store_ = options.make_store(strand_, clock_);
        } else {
            store_ = make_memory_store(strand_, {settings.session, settings.store.data_dir, settings.store.instance_id, clock_, {}});
        }
        admin_console::hooks hooks{clock_,
                                   [this](const std::optional<shared_usage>& shared, std::chrono::milliseconds running) {
                                       store_stats stats;
                                       stats.today = shared;
                                       return today(stats, running);
                                   },
                                   [this] { rules_changed(); },
                                   [this](admin_context& ctx) { cost_->describe(ctx); }};
        console_ = std::make_unique<admin_console>(strand_, *store_, admin_, settings_, wall_clock_, metrics_, std::move(hooks));
        cost_guard::hooks cost_hooks{
            [this](std::uint64_t entry_id, end_reason why) {
                store_->end_session(entry_id, why, [](store_error, bool) {});  // the ended event does the rest
            },
            [this] {
                store_->recheck_admissions();
                broadcast_queue();  // the waiting visitors see the hold begin or end
                note_state();
            },
            [this] { return store_->limits().session_duration; }};
        cost_ = std::make_unique<cost_guard>(strand_, settings_, metrics_, std::move(options.sideband), clock_, wall_clock_,
                                             std::move(cost_hooks), store_->budget_keeper());
        upstream_calls::hooks upstream_hooks{clock_, [this] { return std::static_pointer_cast<void>(shared_from_this()); },
                                             [this] { note_state(); }};
        upstream_calls_ = std::make_unique<upstream_calls>(strand_, settings_, metrics_, std::move(upstream), *store_, *cost_,
                                                           *console_, std::move(upstream_hooks));
        store_->set_admission_gate([this](steady_time t, const std::vector<steady_time>& running_until) {
            return cost_->admits(t, running_until);
        });
        store_->set_listener(this);
        metrics_.operator_paused.store(store_->paused_by_operator() ? 1 : 0, std::memory_order_relaxed);  // restored from DATA_DIR
    }

    ~service_impl() override {
        store_->set_listener(nullptr);
        store_->set_admission_gate(nullptr);
        upstream_calls_.reset();
        console_.reset();
        cost_.reset();
    }

    void handle_admin(http_request req, responder respond) override {
        on_strand([req = std::move(req), respond = std::move(respond)](service_impl& self) mutable {
            self.console_->handle(req, std::move(respond));
        });
    }

    channel_id open_admin_channel(std::string login_id, std::shared_ptr<live_channel> channel) override {
        const auto id = next_channel_id_.fetch_add(1, std::memory_order_relaxed);
        on_strand([id, login_id = std::move(login_id), channel = std::move(channel)](service_impl& self) {
            if (self.shutting_down_) return channel->finish(live_channel::close_reason::done);
            self.console_->open_channel(id, login_id, channel);
        });
        return id;
    }

    void handle(http_request req, responder respond) override {
        on_strand([req = std::move(req), respond = std::move(respond)](service_impl& self) mutable {
            self.on_request(req, std::move(respond));
        });
    }

    channel_id open_channel(std::string ticket, std::shared_ptr<live_channel> channel) override {
        const auto id = next_channel_id_.fetch_add(1, std::memory_order_relaxed);
        on_strand([id, ticket = std::move(ticket), channel = std::move(channel)](service_impl& self) {
            self.channels_.opening(id);
            self.store_->channel_opened(ticket, [&self, id, channel](store_error error, channel_opening opening) {
                self.on_channel_opened(id, channel, error, opening);
            });
        });
        return id;
    }

    void channel_message(channel_id id, std::string text) override {
        on_strand([id, text = std::move(text)](service_impl& self) {
            const auto msg = nlohmann::json::parse(text, nullptr, false);
            if (msg.is_discarded() || !msg.is_object()) return;
            const auto type = msg.find("type");  // value() would throw on {"type":1}
            if (type == msg.end() || !type->is_string() || *type != "heartbeat") return;
            if (const auto entry = self.channels_.entry_of(id)) self.store_->channel_heartbeat(*entry);
        });
    }

    void close_channel(channel_id id) override {
        on_strand([id](service_impl& self) {
            if (!self.console_->close_channel(id)) self.on_close_channel(id);
        });
    }

    void reload(const config& settings) override {
        on_strand([settings](service_impl& self) {
            const auto& session = settings.session;
            self.settings_.session = session;
            self.settings_.cost_per_minute_usd = settings.cost_per_minute_usd;
            self.settings_.admin_token = settings.admin_token;
            self.settings_.cost = settings.cost;
            self.usage_.set_cost_per_minute(settings.cost_per_minute_usd);
            self.cost_->reload(settings);
            ++self.stats_changes_;
            self.published_stats_.withdraw_if_changed(self.current_stats_inputs());
            self.store_->reload(session);
            self.console_->reload(self.settings_);
            self.rules_changed();
            spdlog::info("session limits reloaded: {} slot(s), {} s sessions, queue of {}", session.max_concurrent_users,
                         session.session_duration.count(), session.max_queue_length);
        });
    }

    void shutdown(bool end_sessions, std::function<void()> done) override {
        on_strand([end_sessions, done = std::move(done)](service_impl& self) {
            self.shutting_down_ = true;
            self.store_->shutdown(end_sessions);
            self.cost_->shutdown();  // closes the sidebands before the I/O threads end
            // Whoever is still connected keeps a place (saved in DATA_DIR, or in the shared store):
            // their pages reconnect when the server is back (1012), and the console too.
            self.channels_.close_all(live_channel::close_reason::restart);
            self.console_->close_all(live_channel::close_reason::restart);
            done();
        });
    }

    std::optional<http_response> fresh_stats_answer() const override { return published_stats_.fresh(now()); }

private:
    std::shared_ptr<service_impl> self() { return std::static_pointer_cast<service_impl>(shared_from_this()); }
    steady_time now() const { return clock_(); }

    // Runs `work` on the strand.  An exception escaping it is caught here, at the boundary, and
    // logged: the store's owner keeps running for everyone else (a request's responder, dropped
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

    // Runs one store operation and answers with what `answer` makes of its result (store_answer.hpp).
    template <class Result, class Answer>
    auto answering(responder respond, Answer answer) {
        return voice_broker::answering<Result>(std::move(respond), [this] { note_state(); }, std::move(answer));
    }

    // The operator paused, resumed or changed the limits: what stats shows changed.
    void rules_changed() {
        metrics_.operator_paused.store(store_->paused_by_operator() ? 1 : 0, std::memory_order_relaxed);
        ++stats_changes_;
        published_stats_.withdraw_if_changed(current_stats_inputs());
    }

    // After anything that may have changed what stats and the gauges show (not every change
    // comes with an event: a visitor joining the end of the queue moves nobody).
    void note_state() {
        console_->note_change();
        published_stats_.withdraw_if_changed(current_stats_inputs());
        metrics_.active_sessions.store(static_cast<std::int64_t>(store_->active_count()), std::memory_order_relaxed);
        metrics_.queue_length.store(static_cast<std::int64_t>(store_->queue_length()), std::memory_order_relaxed);
        // Another instance's operator may have paused or resumed (redis mode: a "cfg" event).
        metrics_.operator_paused.store(store_->paused_by_operator() ? 1 : 0, std::memory_order_relaxed);
        metrics_.store_entries.store(static_cast<std::int64_t>(store_->entry_count()), std::memory_order_relaxed);
    }

    void on_request(const http_request& req, responder respond) {
        auto parsed = parse_session_api(req, settings_);
        if (auto* refusal = std::get_if<http_response>(&parsed)) return respond(std::move(*refusal));
        auto& call = std::get<api_call>(parsed);
        switch (call.what) {
        case api_call::kind::join: return join(req, std::move(call), std::move(respond));
        case api_call::kind::status:
        case api_call::kind::heartbeat: return status(call, std::move(respond));
        case api_call::kind::leave: return leave(req, call, std::move(respond));
        case api_call::kind::stats: return stats(std::move(respond));
        case api_call::kind::force_end_all: return force_end_all(req, std::move(respond));
        case api_call::kind::token:
        case api_call::kind::connect: return upstream_calls_->reserve(std::move(call), std::move(respond));
        case api_call::kind::record_call: return upstream_calls_->record(std::move(call), std::move(respond));
        }
    }

    void join(const http_request& req, api_call call, responder respond) {
        if (shutting_down_) return respond(shutting_down());
        if (auto hold = cost_->refuses_new_visitors()) return join_while_held(req, call, *hold, std::move(respond));
        if (auto refusal = join_limits_.refuse(req.client_address, call.ticket.has_value(), now())) return respond(std::move(*refusal));
        join_request request{new_ticket_(), std::move(call.ticket), req.client_address};
        store_->join(std::move(request), answering<join_outcome>(std::move(respond), [this, secure = req.secure,
                                                                                      address = req.client_address](
                                                                                         responder& r, join_outcome outcome) {
                         if (outcome.what == join_outcome::kind::budget_exhausted) {
                             // The shared budget refused it, on every instance's spend (redis mode).
                             const auto now_s = std::chrono::time_point_cast<std::chrono::seconds>(wall_clock_.to_wall(now()));
                             return r(refuse_join(cost_->budget_refusal(), now_s));
                         }
                         if (outcome.what == join_outcome::kind::joined) join_limits_.joined(outcome.status.entry_id, address);
                         r(answer_join(outcome, store_->limits(), wall_clock_, secure, cost_->hold()));
                     }));
    }

    // No session could start (the budget is spent, or a quota pause): no new places, but a
    // visitor who has one keeps it and gets its status.
    void join_while_held(const http_request& req, const api_call& call, const admission_hold& hold, responder respond) {
        auto refusal = refuse_join(hold, std::chrono::time_point_cast<std::chrono::seconds>(wall_clock_.to_wall(now())));
        if (!call.ticket) return respond(std::move(refusal));
        store_->status(*call.ticket, answering<std::optional<entry_status>>(std::move(respond), [this, refusal, secure = req.secure](
                                                                                                   responder& r, std::optional<entry_status> s) {
                           if (!s || s->state == entry_state::ended) return r(refusal);
                           r(answer_join({join_outcome::kind::existing, *s}, store_->limits(), wall_clock_, secure, cost_->hold()));
                       }));
    }

    void status(const api_call& call, responder respond) {
        auto answer = answering<std::optional<entry_status>>(std::move(respond), [this](responder& r, std::optional<entry_status> s) {
            r(s ? answer_status(*s, store_->limits(), wall_clock_, cost_->hold()) : unknown_ticket());
        });
        if (call.what == api_call::kind::status) store_->status(*call.ticket, std::move(answer));
        else store_->heartbeat(*call.ticket, std::move(answer));
    }

    void leave(const http_request& req, const api_call& call, responder respond) {
        store_->leave(*call.ticket, answering<std::optional<entry_status>>(std::move(respond), [secure = req.secure](
                                                                                                   responder& r, std::optional<entry_status> s) {
                          r(s ? answer_leave(*s, secure) : unknown_ticket());
                      }));
    }

    void stats(responder respond) {
        store_->stats(answering<store_stats>(std::move(respond), [this](responder& r, store_stats stats) {
            const auto t = now();
            std::chrono::milliseconds running{0};
            for (const auto& s : stats.sessions) running += std::chrono::duration_cast<std::chrono::milliseconds>(t - s.started_at);
            auto answer = answer_stats(stats, today(stats, running), t, started_at_, wall_clock_, cost_->stats());
            publish_stats(answer, t);
            r(std::move(answer));
        }));
    }

    // Today's use: the shared store's count when there is one, else this instance's.
    usage_today today(const store_stats& stats, std::chrono::milliseconds running) {
        if (!stats.today) return usage_.today(wall_clock_.to_wall(now()), running);
        return usage_from(stats.today->sessions_started, stats.today->sessions_completed, stats.today->talked, running,
                          settings_.cost_per_minute_usd);
    }

    void force_end_all(const http_request& req, responder respond) {
        if (auto refusal = check_admin_token(req, *admin_, now())) return respond(std::move(*refusal));
        store_->force_end_all(answering<std::size_t>(std::move(respond), [address = req.client_address](responder& r, std::size_t n) {
            spdlog::info("admin: forceEndAll from {} ended {} session(s)", address.empty() ? "-" : address, n);
            r(answer_force_end_all(n));
        }));
    }

    // ---- live channels ---------------------------------------------------------------------------
    void on_channel_opened(channel_id id, const std::shared_ptr<live_channel>& channel, store_error error,
                           const channel_opening& opening) {
        if (!channels_.opened(id)) {  // the page closed it while the store was asked
            const bool counted = error == store_error::none && opening.what == channel_opening::kind::opened;
            if (counted) store_->channel_closed(opening.status.entry_id);
            return;
        }
        if (!accepts_opening(*channel, error, opening, settings_.cost.silence_timeout)) return;
        if (!channels_.add(id, opening.status.entry_id, channel)) {
            return store_->channel_closed(opening.status.entry_id);  // the store counted it: give it back
        }
        push_status(opening.status);
        // A warning that fired while the page had no channel here (it was reconnecting, or its
        // instance restarted) is told again: delivery is at least once, the page shows it once.
        if (auto replay = replayed_warning(opening.status)) channel->push(std::move(replay), false);
    }

    void on_close_channel(channel_id id) {
        const auto entry_id = channels_.remove(id);
        if (!entry_id) return;
        store_->channel_closed(*entry_id);
        note_state();
    }

    // ---- what the store tells ----------------------------------------------------------------
    void on_events(const std::vector<broker_event>& events, steady_time t, bool caused_here) override {
        bool queue_changed = false;
        for (const auto& ev : events) {
            if (ev.what == broker_event::kind::admitted || ev.what == broker_event::kind::ended) ++stats_changes_;
        }
        published_stats_.withdraw_if_changed(current_stats_inputs());  // before any push can tell of a change
        for (const auto& ev : events) {
            switch (ev.what) {
            case broker_event::kind::admitted: on_admitted(ev, t, caused_here); break;
            case broker_event::kind::warning: on_warning(ev, caused_here); break;
            case broker_event::kind::ended: on_ended(ev, t, caused_here); break;
            case broker_event::kind::queue_changed: queue_changed = true; break;
            }
        }
        if (queue_changed) broadcast_queue();
        note_state();
    }

    void on_hang_ups(std::vector<std::string> call_ids) override {
        for (const auto& call_id : call_ids) {
            upstream_calls_->hang_up(call_id);
            store_->hang_up_done(call_id);
        }
    }

    // Pushes may have been lost: every open channel gets its status again (or its end).
    void on_resync() override {
        note_state();  // the mirror was read again: the operator's pause among it
        ++stats_changes_;
        published_stats_.withdraw_if_changed(current_stats_inputs());
        auto ids = channels_.entries();
        if (ids.empty()) return;
        store_->statuses(std::move(ids), [this](store_error error, std::vector<entry_status> found) {
            if (error != store_error::none) return;  // the store resyncs again once it can
            for (const auto& s : found) {
                if (s.state != entry_state::ended) {
                    push_status(s);
                    if (auto replay = replayed_warning(s)) channels_.push(s.entry_id, replay);  // its push may be lost too
                    continue;
                }
                join_limits_.ended(s.entry_id);
                end_channels(s.entry_id, s.reason);
            }
        });
    }

    void on_admitted(const broker_event& ev, steady_time t, bool caused_here) {
        if (caused_here) {
            const auto waited = t - ev.waited_since;
            metrics_.admissions.fetch_add(1, std::memory_order_relaxed);
            metrics_.queue_wait_seconds.observe(std::chrono::duration<double>(waited).count());
            usage_.session_started(wall_clock_.to_wall(t));
            spdlog::info("session: visitor admitted after waiting {} s",
                         std::chrono::duration_cast<std::chrono::seconds>(waited).count());
        }
        push_status(ev.status);
    }

    void on_warning(const broker_event& ev, bool caused_here) {
        if (caused_here) metrics_.warnings_sent.fetch_add(1, std::memory_order_relaxed);
        channels_.push(ev.entry_id, warning_message(ev.seconds_left, ev.seconds_left.count(), false));
    }

    // The latest warning of an active session, marked as told again; null before the first.
    static shared_message replayed_warning(const entry_status& s) {
        if (s.state != entry_state::active || s.last_warning.count() <= 0) return nullptr;
        return warning_message(s.last_warning, s.remaining_seconds, true);
    }

    void on_ended(const broker_event& ev, steady_time t, bool caused_here) {
        std::optional<std::chrono::milliseconds> talked;
        if (ev.was_active) talked = std::chrono::duration_cast<std::chrono::milliseconds>(t - ev.started_at);
        const auto cost = cost_->session_ended(ev.entry_id, talked, caused_here);
        if (caused_here) {
            metrics_.ends_by_reason[static_cast<std::size_t>(ev.reason)].fetch_add(1, std::memory_order_relaxed);
            if (talked) {
                usage_.session_ended(wall_clock_.to_wall(t), *talked);
                spdlog::info("session: ended ({}) after {} s; real cost {} (estimate {})", to_string(ev.reason),
                             talked->count() / 1000, format_usd(cost.real), format_usd(cost.estimate));
            }
        }
        join_limits_.ended(ev.entry_id);
        end_channels(ev.entry_id, ev.reason);
    }

    // The session is over: its channels are told why and close, and the store gets each one's
    // count back.  Their closing cannot do it (they are no longer here to be found), and the Redis
    // store would otherwise keep them in its list of this instance's channels for good, and touch
    // them in Redis every tick (the Redis soak found it: that list grew by every ended session).
    void end_channels(std::uint64_t entry_id, end_reason why) {
        const auto closed = channels_.end(entry_id, ended_message(why, settings_.cost.silence_timeout));
        for (std::size_t i = 0; i < closed; ++i) store_->channel_closed(entry_id);
    }

    // One pass over the queue; a visitor's channels are found by entry id (no string hashing) and
    // the document is rendered once per visitor into one string (no JSON objects).
    void broadcast_queue() {
        if (channels_.empty()) return;
        const status_renderer renderer(store_->limits(), wall_clock_, cost_->hold());
        store_->for_each_queued_status([&](const entry_status& s) { channels_.push_status(s, renderer); });
    }

    void push_status(const entry_status& s) {
        channels_.push_status(s, status_renderer(store_->limits(), wall_clock_, cost_->hold()));
    }

    // ---- the published stats copy --------------------------------------------------------------
    stats_inputs current_stats_inputs() const {
        return {store_->active_count(), store_->queue_length(), stats_changes_ + cost_->changes()};
    }

    void publish_stats(http_response& answer, steady_time built_at) {
        const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(built_at - started_at_);
        auto fresh_until = started_at_ + uptime + std::chrono::seconds{1};
        if (const auto until = store_->stats_fresh_until(); !until) return;
        else fresh_until = std::min(fresh_until, *until);
        published_stats_.publish(answer, current_stats_inputs(), fresh_until);
    }

    std::function<steady_time()> clock_;
    std::function<std::string()> new_ticket_;
    net::strand<net::io_context::executor_type> strand_;
    config settings_;
    metrics& metrics_;
    std::unique_ptr<session_store> store_;
    usage_tracker usage_;
    std::shared_ptr<admin_auth> admin_;
    std::unique_ptr<admin_console> console_;
    std::unique_ptr<cost_guard> cost_;
    std::unique_ptr<upstream_calls> upstream_calls_;
    join_limits join_limits_;
    wall_clock_mapping wall_clock_;
    steady_time started_at_;
    std::atomic<channel_id> next_channel_id_{1};
    visitor_channels channels_;
    bool shutting_down_ = false;
    published_stats published_stats_;
    std::uint64_t stats_changes_ = 0;
};

}  // namespace

std::shared_ptr<session_service> session_service::create(net::io_context& ioc, const config& settings, metrics& counters,
                                                         std::shared_ptr<realtime_upstream> upstream, service_options options) {
    return std::make_shared<service_impl>(ioc, settings, counters, std::move(upstream), std::move(options));
}

}  // namespace voice_broker
