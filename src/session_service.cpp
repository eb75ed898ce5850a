#include "voice_broker/session_service.hpp"

#include "memory_store.hpp"
#include "published_stats.hpp"
#include "voice_broker/auth_throttle.hpp"
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

std::shared_ptr<const std::string> shared_text(std::string text) { return std::make_shared<const std::string>(std::move(text)); }

std::shared_ptr<const std::string> ended_message(end_reason why) {
    return shared_text(nlohmann::json{{"type", "ended"}, {"reason", to_string(why)}}.dump());
}

std::shared_ptr<const std::string> unknown_ticket_message() {
    return shared_text(nlohmann::json{{"type", "error"},
                                      {"error",
                                       {{"code", "unknown_ticket"}, {"message", "This ticket is unknown or has expired; join again."}}}}
                           .dump());
}

class service_impl final : public session_service, private store_listener {
public:
    service_impl(net::io_context& ioc, const config& settings, metrics& counters, std::shared_ptr<realtime_upstream> upstream,
                 service_options options)
        : clock_(options.clock ? std::move(options.clock) : [] { return std::chrono::steady_clock::now(); }),
          new_ticket_(options.new_ticket ? std::move(options.new_ticket) : [] { return make_ticket(); }),
          strand_(net::make_strand(ioc)),
          settings_(settings),
          metrics_(counters),
          upstream_(std::move(upstream)),
          usage_(settings.cost_per_minute_usd),
          wall_clock_(options.wall_clock.value_or(wall_clock_mapping::now())),
          started_at_(clock_()) {
        store_ = options.make_store ? options.make_store(strand_, clock_) : make_memory_store(strand_, settings.session, clock_);
        store_->set_listener(this);
    }

    ~service_impl() override { store_->set_listener(nullptr); }

    void handle(http_request req, responder respond) override {
        on_strand([req = std::move(req), respond = std::move(respond)](service_impl& self) mutable {
            self.on_request(req, std::move(respond));
        });
    }

    channel_id open_channel(std::string ticket, std::shared_ptr<live_channel> channel) override {
        const auto id = next_channel_id_.fetch_add(1, std::memory_order_relaxed);
        on_strand([id, ticket = std::move(ticket), channel = std::move(channel)](service_impl& self) {
            self.store_->channel_opened(ticket, [&self, id, channel](store_error error, channel_opening opening) {
                self.on_channel_opened(id, channel, error, opening);
            });
        });
        return id;
    }

    void channel_message(channel_id id, std::string text) override {
        on_strand([id, text = std::move(text)](service_impl& self) {
            const auto msg = nlohmann::json::parse(text, nullptr, false);
            if (msg.is_discarded() || !msg.is_object() || msg.value("type", "") != "heartbeat") return;
            const auto entry = self.channel_entries_.find(id);
            if (entry != self.channel_entries_.end()) self.store_->channel_heartbeat(entry->second);
        });
    }

    void close_channel(channel_id id) override {
        on_strand([id](service_impl& self) { self.on_close_channel(id); });
    }

    void reload(const config& settings) override {
        on_strand([session = settings.session, cost = settings.cost_per_minute_usd, admin = settings.admin_token](service_impl& self) {
            self.settings_.session = session;
            self.settings_.cost_per_minute_usd = cost;
            self.settings_.admin_token = admin;
            self.usage_.set_cost_per_minute(cost);
            ++self.stats_changes_;
            self.published_stats_.withdraw_if_changed(self.current_stats_inputs());
            self.store_->reload(session);
            spdlog::info("session limits reloaded: {} slot(s), {} s sessions, queue of {}", session.max_concurrent_users,
                         session.session_duration.count(), session.max_queue_length);
        });
    }

    void shutdown(bool end_sessions, std::function<void()> done) override {
        on_strand([end_sessions, done = std::move(done)](service_impl& self) {
            self.shutting_down_ = true;
            self.store_->shutdown(end_sessions);
            if (!end_sessions) self.close_every_channel(live_channel::close_reason::restart);
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

    // Runs one store operation and answers with what `answer` makes of its result; a store that
    // cannot be reached gets 503 store_unavailable.
    template <class Result, class Answer>
    auto answering(responder respond, Answer answer) {
        return [this, respond = std::make_shared<responder>(std::move(respond)), answer = std::move(answer)](
                   store_error error, Result result) mutable {
            note_state();  // before the answer can tell anyone of the change
            if (error != store_error::none) return (*respond)(store_unavailable());
            answer(*respond, std::move(result));
        };
    }

    // After anything that may have changed what stats and the gauges show (not every change
    // comes with an event: a visitor joining the end of the queue moves nobody).
    void note_state() {
        published_stats_.withdraw_if_changed(current_stats_inputs());
        metrics_.active_sessions.store(static_cast<std::int64_t>(store_->active_count()), std::memory_order_relaxed);
        metrics_.queue_length.store(static_cast<std::int64_t>(store_->queue_length()), std::memory_order_relaxed);
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
        case api_call::kind::connect: return reserve_upstream_use(std::move(call), std::move(respond));
        case api_call::kind::record_call: return record_call(std::move(call), std::move(respond));
        }
    }

    void join(const http_request& req, api_call call, responder respond) {
        if (shutting_down_) return respond(shutting_down());
        join_request request{new_ticket_(), std::move(call.ticket), req.client_address};
        store_->join(std::move(request), answering<join_outcome>(std::move(respond), [this, secure = req.secure](
                                                                                          responder& r, join_outcome outcome) {
                         r(answer_join(outcome, store_->limits(), wall_clock_, secure));
                     }));
    }

    void status(const api_call& call, responder respond) {
        auto answer = answering<std::optional<entry_status>>(std::move(respond), [this](responder& r, std::optional<entry_status> s) {
            r(s ? answer_status(*s, store_->limits(), wall_clock_) : unknown_ticket());
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
            auto answer = answer_stats(stats, today(stats, running), t, started_at_, wall_clock_);
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
        if (auto refusal = check_admin_token(req, settings_, admin_throttle_, now())) return respond(std::move(*refusal));
        store_->force_end_all(answering<std::size_t>(std::move(respond), [address = req.client_address](responder& r, std::size_t n) {
            spdlog::info("admin: forceEndAll from {} ended {} session(s)", address.empty() ? "-" : address, n);
            r(answer_force_end_all(n));
        }));
    }

    void reserve_upstream_use(api_call call, responder respond) {
        if (!upstream_) return respond(openai_not_configured());
        const auto ticket = *call.ticket;  // before `call` moves into the callback
        store_->reserve_token(ticket, max_tokens_per_session,
                              answering<token_reservation>(std::move(respond), [this, call = std::move(call)](
                                                                                   responder& r, token_reservation reservation) mutable {
                                  if (auto refusal = refuse_reservation(reservation)) return r(std::move(*refusal));
                                  if (call.what == api_call::kind::token) return mint(reservation.status, std::move(r));
                                  relay(reservation.status.entry_id, std::move(call.sdp_offer), std::move(r));
                              }));
    }

    void record_call(api_call call, responder respond) {
        // The page reports the call it opened with its key; relay mode records its own calls.
        store_->status(*call.ticket, answering<std::optional<entry_status>>(std::move(respond), [this, call_id = call.call_id](
                                                                                                    responder& r, std::optional<entry_status> s) {
                           if (!s) return r(unknown_ticket());
                           if (auto refusal = refuse_call_recording(*s, settings_)) return r(std::move(*refusal));
                           store_->record_call(s->entry_id, call_id, answering<call_recording>(std::move(r), [](responder& rr, call_recording c) {
                                                   rr(answer_call_recording(c));
                                               }));
                       }));
    }

    void mint(const entry_status& holder, responder respond) {
        auto shared = std::make_shared<responder>(std::move(respond));
        upstream_->mint_token(token_ttl(holder, settings_.openai), [self = self(), shared](http_response res) {
            net::post(self->strand_, [self, res = std::move(res), shared]() mutable {
                if (res.status == 200) self->metrics_.tokens_minted.fetch_add(1, std::memory_order_relaxed);
                (*shared)(std::move(res));
            });
        });
    }

    void relay(std::uint64_t entry_id, std::string sdp_offer, responder respond) {
        auto shared = std::make_shared<responder>(std::move(respond));
        upstream_->relay_offer(std::move(sdp_offer), [self = self(), entry_id, shared](realtime_upstream::call_result result) {
            net::post(self->strand_, [self, entry_id, result = std::move(result), shared]() mutable {
                if (result.call_id) self->adopt_relayed_call(entry_id, *result.call_id);
                (*shared)(std::move(result.response));
            });
        });
    }

    // A call the server opened for this session: kept for the hang-up, or, when the session ended
    // while the call was being opened (or the store cannot keep it), ended at once.
    void adopt_relayed_call(std::uint64_t entry_id, const std::string& call_id) {
        store_->record_call(entry_id, call_id, [this, call_id](store_error error, call_recording recorded) {
            if (error == store_error::none && recorded == call_recording::recorded) return;
            hang_up(call_id);
        });
    }

    void hang_up(const std::string& call_id) {
        if (!upstream_) return;
        upstream_->hang_up(call_id);
        metrics_.hangups_sent.fetch_add(1, std::memory_order_relaxed);
    }

    // ---- live channels ---------------------------------------------------------------------------
    void on_channel_opened(channel_id id, const std::shared_ptr<live_channel>& channel, store_error error,
                           const channel_opening& opening) {
        if (error != store_error::none) {
            // The store cannot say who this is right now: close for a restart, the page comes back.
            return channel->finish(live_channel::close_reason::restart);
        }
        switch (opening.what) {
        case channel_opening::kind::unknown:
            channel->push(unknown_ticket_message(), false);
            return channel->finish(live_channel::close_reason::done);
        case channel_opening::kind::ended:
            channel->push(ended_message(opening.status.reason), false);
            return channel->finish(live_channel::close_reason::done);
        case channel_opening::kind::opened: break;
        }
        const auto entry_id = opening.status.entry_id;
        channel_entries_.emplace(id, entry_id);
        channels_[entry_id].push_back({id, channel});
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
        store_->channel_closed(entry_id);
        note_state();
    }

    void close_every_channel(live_channel::close_reason why) {
        for (auto& [entry_id, list] : channels_) {
            for (auto& c : list) c.channel->finish(why);
        }
        channels_.clear();
        channel_entries_.clear();
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
            hang_up(call_id);
            store_->hang_up_done(call_id);
        }
    }

    // Pushes may have been lost: every open channel gets its status again (or its end).
    void on_resync() override {
        ++stats_changes_;
        published_stats_.withdraw_if_changed(current_stats_inputs());
        std::vector<std::uint64_t> ids;
        ids.reserve(channels_.size());
        for (const auto& [entry_id, list] : channels_) ids.push_back(entry_id);
        if (ids.empty()) return;
        store_->statuses(std::move(ids), [this](store_error error, std::vector<entry_status> found) {
            if (error != store_error::none) return;  // the store resyncs again once it can
            for (const auto& s : found) {
                if (s.state != entry_state::ended) {
                    push_status(s);
                    continue;
                }
                broker_event ended{broker_event::kind::ended, s.entry_id};
                ended.reason = s.reason;
                close_ended(ended);
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
        const auto secs = ev.seconds_left.count();
        push(ev.entry_id,
             shared_text(nlohmann::json{{"type", "warning"}, {"minutesLeft", (secs + 59) / 60}, {"remainingSeconds", secs}}.dump()),
             false);
    }

    void on_ended(const broker_event& ev, steady_time t, bool caused_here) {
        if (caused_here) count_end(ev, t);
        close_ended(ev);
    }

    void count_end(const broker_event& ev, steady_time t) {
        metrics_.ends_by_reason[static_cast<std::size_t>(ev.reason)].fetch_add(1, std::memory_order_relaxed);
        if (ev.was_active) {
            const auto talked = std::chrono::duration_cast<std::chrono::milliseconds>(t - ev.started_at);
            usage_.session_ended(wall_clock_.to_wall(t), talked);
            spdlog::info("session: ended ({}) after {} s", to_string(ev.reason), talked.count() / 1000);
        }
    }

    void close_ended(const broker_event& ev) {
        push(ev.entry_id, ended_message(ev.reason), false);
        if (auto it = channels_.find(ev.entry_id); it != channels_.end()) {
            for (auto& c : it->second) {
                channel_entries_.erase(c.id);
                c.channel->finish(live_channel::close_reason::done);
            }
            channels_.erase(it);
        }
    }

    // One pass over the queue; a visitor's channels are found by entry id (no string hashing) and
    // the document is rendered once per visitor into one string (no JSON objects).
    void broadcast_queue() {
        if (channels_.empty()) return;
        const status_renderer renderer(store_->limits(), wall_clock_);
        store_->for_each_queued_status([&](const entry_status& s) {
            const auto it = channels_.find(s.entry_id);
            if (it == channels_.end()) return;
            const auto msg = shared_text(renderer.push(s));
            for (auto& c : it->second) c.channel->push(msg, true);
        });
    }

    void push_status(const entry_status& s) {
        auto it = channels_.find(s.entry_id);
        if (it == channels_.end()) return;
        const auto msg = shared_text(status_renderer(store_->limits(), wall_clock_).push(s));
        for (auto& c : it->second) c.channel->push(msg, true);
    }

    void push(std::uint64_t entry_id, const std::shared_ptr<const std::string>& msg, bool replaceable) {
        auto it = channels_.find(entry_id);
        if (it == channels_.end()) return;
        for (auto& c : it->second) c.channel->push(msg, replaceable);
    }

    // ---- the published stats copy --------------------------------------------------------------
    stats_inputs current_stats_inputs() const { return {store_->active_count(), store_->queue_length(), stats_changes_}; }

    void publish_stats(http_response& answer, steady_time built_at) {
        const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(built_at - started_at_);
        auto fresh_until = started_at_ + uptime + std::chrono::seconds{1};
        if (const auto until = store_->stats_fresh_until(); !until) return;
        else fresh_until = std::min(fresh_until, *until);
        published_stats_.publish(answer, current_stats_inputs(), fresh_until);
    }

    struct open_channel_ref {
        channel_id id;
        std::shared_ptr<live_channel> channel;
    };

    std::function<steady_time()> clock_;
    std::function<std::string()> new_ticket_;
    net::strand<net::io_context::executor_type> strand_;
    config settings_;
    metrics& metrics_;
    std::shared_ptr<realtime_upstream> upstream_;
    std::unique_ptr<session_store> store_;
    usage_tracker usage_;
    auth_throttle admin_throttle_;
    wall_clock_mapping wall_clock_;
    steady_time started_at_;
    std::atomic<channel_id> next_channel_id_{1};
    std::unordered_map<std::uint64_t, std::vector<open_channel_ref>> channels_;  // by entry id
    std::unordered_map<channel_id, std::uint64_t> channel_entries_;              // channel -> entry id
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
