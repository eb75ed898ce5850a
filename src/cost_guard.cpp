#include "cost_guard.hpp"

#include "voice_broker/admin_api.hpp"
#include "voice_broker/budget_record.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/sideband_client.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

namespace voice_broker {

namespace net = boost::asio;

namespace {

budget_limits limits_of(const config& c) {
    return {usd_amount::from_dollars(c.cost.daily_budget_usd), usd_amount::from_dollars(c.cost.monthly_budget_usd)};
}

std::string budget_file_of(const config& c, bool shared) {
    if (shared || c.store.data_dir.empty()) return {};
    return (std::filesystem::path(c.store.data_dir) / budget_file_name).string();
}

budget_record restored_record(const std::string& file) {
    if (file.empty()) return {};
    auto loaded = load_budget_record(file);
    if (loaded.warning) spdlog::warn("budget: {}", *loaded.warning);
    return loaded.record;
}

std::string join_fields(const std::vector<std::string>& fields) {
    std::string out;
    for (const auto& f : fields) out += (out.empty() ? "" : ", ") + f;
    return out;
}

nlohmann::json tokens_json(const token_usage& t) {
    return {{"input",
             {{"text", t.text_input}, {"audio", t.audio_input}, {"cachedText", t.cached_text_input}, {"cachedAudio", t.cached_audio_input}}},
            {"output", {{"text", t.text_output}, {"audio", t.audio_output}}}};
}

}  // namespace

cost_guard::cost_guard(net::any_io_executor strand, const config& settings, metrics& counters,
                       std::shared_ptr<sideband_client> sideband, std::function<steady_time()> clock,
                       wall_clock_mapping wall_clock, hooks h, shared_budget* shared)
    : strand_(std::move(strand)),
      settings_(settings),
      metrics_(counters),
      sideband_(std::move(sideband)),
      clock_(std::move(clock)),
      wall_clock_(wall_clock),
      hooks_(std::move(h)),
      shared_(shared),
      budget_file_(budget_file_of(settings, shared != nullptr)),
      budget_(limits_of(settings), settings.cost.budget_zone, restored_record(budget_file_), wall_now()),
      timer_(strand_) {
    if (shared_) {
        shared_->link_budget([this]() -> std::optional<budget_terms> { return terms_now(); },
                             [this](const shared_spend& spend) { on_shared_spend(spend); });
    }
    after_cost_change();
}

cost_guard::~cost_guard() {
    *alive_ = false;
    timer_.cancel();
    if (shared_) shared_->link_budget(nullptr, nullptr);
}

std::chrono::sys_seconds cost_guard::wall_now() const {
    return std::chrono::time_point_cast<std::chrono::seconds>(wall_clock_.to_wall(now()));
}

// ---- calls and their sidebands ------------------------------------------------------------------

void cost_guard::watch_call(std::uint64_t entry_id, steady_time session_end, const std::string& call_id, bool russian) {
    if (!sideband_) return;
    const auto lang = russian ? call_monitor::language::ru : call_monitor::language::en;
    auto& w = watched_[entry_id];
    if (!w.calls) {
        w.calls = std::make_unique<session_calls>(make_call_monitor_settings(settings_), settings_.cost.prices, session_end, lang);
    }
    w.calls->set_language(lang);  // the page may have switched since its last request
    if (w.calls->add_call(call_id, now())) open_sideband(entry_id, call_id);
    drain(entry_id);
}

void cost_guard::open_sideband(std::uint64_t entry_id, const std::string& call_id) {
    // Every open() gets exactly one on_end: the gauge follows the connection, not the watch
    // (which may be gone by then).
    auto opened = std::make_shared<bool>(false);
    sideband_handlers h;
    h.on_open = [this, alive = alive_, opened, entry_id, call_id] {
        if (!*alive) return;
        *opened = true;
        metrics_.sideband_connections.fetch_add(1, std::memory_order_relaxed);
        if (auto it = watched_.find(entry_id); it != watched_.end()) {
            it->second.calls->sideband_opened(call_id, now());
            drain(entry_id);
        }
    };
    h.on_event = [this, alive = alive_, entry_id, call_id](nlohmann::json event) {
        if (!*alive) return;
        if (auto it = watched_.find(entry_id); it != watched_.end()) {
            it->second.calls->on_event(call_id, event, now());
            drain(entry_id);
        }
    };
    h.on_end = [this, alive = alive_, opened, entry_id, call_id](sideband_end_info why) {
        if (!*alive) return;
        if (*opened) metrics_.sideband_connections.fetch_sub(1, std::memory_order_relaxed);
        if (auto it = watched_.find(entry_id); it != watched_.end()) {
            it->second.calls->sideband_ended(call_id, why, now());
            drain(entry_id);
        }
    };
    watched_[entry_id].sidebands[call_id] = sideband_->open(call_id, strand_, std::move(h));
}

// Carries out what the session's monitors decided.
void cost_guard::drain(std::uint64_t entry_id) {
    auto it = watched_.find(entry_id);
    if (it == watched_.end()) return;
    auto& w = it->second;
    std::optional<end_reason> verdict;
    bool cost_changed = false;
    for (auto& [call_id, a] : w.calls->take_actions()) {
        switch (a.what) {
        case monitor_action::kind::send:
            if (auto c = w.sidebands[call_id]) c->send(a.event);
            break;
        case monitor_action::kind::reconnect_sideband: open_sideband(entry_id, call_id); break;
        case monitor_action::kind::close_sideband:
            if (auto c = w.sidebands[call_id]) c->close();
            break;
        case monitor_action::kind::usage:
            add_real(entry_id, a);
            cost_changed = true;
            break;
        case monitor_action::kind::session_reverted:
            metrics_.session_updates_reverted.fetch_add(1, std::memory_order_relaxed);
            spdlog::warn("cost: the page changed the session's {}; the server's values are back", join_fields(a.fields));
            break;
        case monitor_action::kind::wrap_up_sent: metrics_.wrap_ups_sent.fetch_add(1, std::memory_order_relaxed); break;
        case monitor_action::kind::sideband_failed:
            metrics_.sideband_failures.fetch_add(1, std::memory_order_relaxed);
            spdlog::warn("cost: the sideband of a call failed ({}); the call goes on, priced by the estimate", a.detail);
            break;
        case monitor_action::kind::upstream_error: spdlog::warn("cost: OpenAI refused a sideband event: {}", a.detail); break;
        case monitor_action::kind::idle: verdict = end_reason::idle; break;
        case monitor_action::kind::call_lost:
            spdlog::info("cost: the call was lost ({}); its session ends", a.detail);
            verdict = end_reason::call_ended;
            break;
        }
    }
    if (cost_changed) after_cost_change();
    // The store's ended event comes back through session_ended(), which stops the watch.
    if (verdict) hooks_.end_session(entry_id, *verdict);
    arm_timer();
}

void cost_guard::add_real(std::uint64_t entry_id, const monitor_action& usage) {
    metrics_.count_tokens(usage.usage);
    if (!usage.priced) {
        if (std::find(unpriced_models_.begin(), unpriced_models_.end(), usage.model) == unpriced_models_.end()) {
            unpriced_models_.push_back(usage.model);
            spdlog::warn("cost: no price for model {}; add it to PRICES in the limits file (its calls count by the estimate)",
                         usage.model);
        }
        return;
    }
    metrics_.add_cost(metrics::cost_kind::real, usage.cost);
    if (shared_) return shared_->add_spend({entry_id, usage.cost, {}, usage.usage});  // its answer updates the view
    budget_.add_real(usage.cost, wall_now(), usage.usage);
}

// ---- the budget kept by the store (redis mode) --------------------------------------------------

budget_terms cost_guard::terms_now() {
    const auto s = budget_.status(wall_now());  // rolls to the current periods
    budget_terms out;
    out.day_period = s.day.key;
    out.month_period = s.month.key;
    out.daily_micro_usd = micro_usd_floor(s.limits.daily);
    out.monthly_micro_usd = micro_usd_floor(s.limits.monthly);
    // Rounded up, so committed and one session are never underestimated.
    out.cost_per_minute_micro_usd = micro_usd_ceil(usd_amount::from_dollars(settings_.cost_per_minute_usd));
    return out;
}

void cost_guard::on_shared_spend(const shared_spend& spend) {
    for (const auto& c : spend.crossed) {
        // This instance's own addition crossed the line: it is logged here, and nowhere else.
        const auto limit = c.monthly ? budget_.limits().monthly : budget_.limits().daily;
        const auto spent = c.monthly ? spend.month.total() : spend.day.total();
        spdlog::warn("budget: {} % of the {} budget spent ({} of {}; every instance together)", c.percent,
                     c.monthly ? "month" : "day", format_usd(spent, 2), format_usd(limit, 2));
    }
    if (budget_.adopt_shared(spend.day, spend.month, wall_now())) after_cost_change();
}

usd_amount cost_guard::one_session() const {
    return usd_amount::from_dollars(settings_.cost_per_minute_usd * static_cast<double>(hooks_.session_length().count()) / 60.0);
}

cost_guard::session_cost cost_guard::session_ended(std::uint64_t entry_id, std::optional<std::chrono::milliseconds> talked,
                                                   bool count) {
    session_cost out;
    bool complete = false;
    if (auto it = watched_.find(entry_id); it != watched_.end()) {
        it->second.calls->stop();
        drain(entry_id);  // closes the sidebands
        out.real = it->second.calls->cost();
        // Token mode is never complete: the page may talk before it reports its call (docs/COST.md).
        complete = it->second.calls->usage_complete() && settings_.openai.mode == realtime_mode::relay;
        watched_.erase(it);
    }
    if (talked) {
        out.estimate = usd_amount::from_dollars(settings_.cost_per_minute_usd *
                                                std::chrono::duration<double, std::ratio<60>>(*talked).count());
    }
    if (count && !complete && out.estimate > out.real) {
        // What no sideband reported is priced by the estimate: max(real, estimate) in all.  (In
        // redis mode the store charged it already, in the step that ended the session.)
        const auto rest = out.estimate - out.real;
        if (!shared_) budget_.add_estimated(rest, wall_now());
        metrics_.add_cost(metrics::cost_kind::estimated, rest);
    }
    after_cost_change();
    arm_timer();
    return out;
}

// ---- admissions ---------------------------------------------------------------------------------

void cost_guard::quota_exhausted() {
    if (settings_.cost.quota_pause.count() <= 0) return;
    const bool already = quota_paused_until_.has_value();
    quota_paused_until_ = now() + settings_.cost.quota_pause;
    metrics_.upstream_quota_paused.store(1, std::memory_order_relaxed);
    if (!already) {
        spdlog::error("cost: the OpenAI account is out of credit (insufficient_quota); no admissions for {} s",
                      settings_.cost.quota_pause.count());
    }
    set_hold(make_hold(admission_hold::reason::upstream_quota, false,
                       std::chrono::ceil<std::chrono::seconds>(wall_clock_.to_wall(*quota_paused_until_))));
    arm_timer();
}

std::optional<std::int64_t> cost_guard::quota_pause_left() {
    if (!quota_paused_until_ || now() >= *quota_paused_until_) return std::nullopt;
    return std::max<std::int64_t>(1, seconds_until(now(), *quota_paused_until_));
}

bool cost_guard::admits(steady_time t, const std::vector<steady_time>& running_until) {
    if (quota_paused_until_ && t < *quota_paused_until_) return false;
    const double per_minute = settings_.cost_per_minute_usd;
    usd_amount committed;  // the remaining minutes of the sessions already running
    for (const auto& until : running_until) {
        if (until > t) committed += usd_amount::from_dollars(per_minute * std::chrono::duration<double, std::ratio<60>>(until - t).count());
    }
    const auto check = budget_.check_admission(wall_now(), committed, one_session());
    metrics_.budget_exhausted.store(check.exhausted ? 1 : 0, std::memory_order_relaxed);
    if (check.allowed) {
        set_hold(std::nullopt);
        return true;
    }
    set_hold(make_hold(admission_hold::reason::budget_exhausted, check.blocking == budget_period::month, check.retry_at));
    arm_timer();
    // Redis mode: the hold above tells the waiting visitors what the shared spend shows; the
    // store's script decides, on the figures of every instance at that instant.
    return shared_ != nullptr;
}

std::optional<admission_hold> cost_guard::refuses_new_visitors() {
    if (quota_pause_left()) return hold_;
    const auto check = budget_.check_admission(wall_now(), usd_amount{}, one_session());
    if (!check.exhausted) return std::nullopt;
    return make_hold(admission_hold::reason::budget_exhausted, check.blocking == budget_period::month, check.retry_at);
}

admission_hold cost_guard::budget_refusal() {
    if (auto hold = refuses_new_visitors(); hold && hold->why == admission_hold::reason::budget_exhausted) return *hold;
    // The store saw more spend than this view has yet: the day's budget, unless only the month's is on.
    const auto s = budget_.status(wall_now());
    const bool monthly = s.limits.daily.is_zero();
    return make_hold(admission_hold::reason::budget_exhausted, monthly, monthly ? s.month_resets_at : s.day_resets_at);
}

admission_hold cost_guard::make_hold(admission_hold::reason why, bool monthly, std::chrono::sys_seconds until) const {
    const auto& zone = budget_.zone();
    return {why, monthly, until, zone.format_local(until), zone.name()};
}

// A change of the hold is told to the service after the store's operation that asked the gate.
void cost_guard::set_hold(std::optional<admission_hold> hold) {
    const bool same = hold.has_value() == hold_.has_value() &&
                      (!hold || (hold->why == hold_->why && hold->resumes_at == hold_->resumes_at && hold->monthly == hold_->monthly));
    if (same) return;
    hold_ = std::move(hold);
    ++changes_;
    net::post(strand_, [this, alive = alive_] {
        if (*alive) hooks_.admissions_changed();
    });
}

// ---- the budget's bookkeeping -----------------------------------------------------------------

void cost_guard::after_cost_change() {
    ++changes_;
    for (const auto& c : budget_.take_crossings()) {
        spdlog::warn("budget: {} % of the {} budget spent ({} of {})", c.percent, to_string(c.period), format_usd(c.spent, 2),
                     format_usd(c.limit, 2));
    }
    const auto s = budget_.status(wall_now());
    metrics_.set_today_cost(metrics::cost_kind::real, s.day.real);
    metrics_.set_today_cost(metrics::cost_kind::estimated, s.day.estimated);
    metrics_.set_budget(0, s.limits.daily, s.day.total());
    metrics_.set_budget(1, s.limits.monthly, s.month.total());
    // Spent alone leaves no room for one session: so says the gauge (and stats) at once, not
    // only when the gate next runs (in redis mode the spend may be another instance's).
    metrics_.budget_exhausted.store(budget_.check_admission(wall_now(), usd_amount{}, one_session()).exhausted ? 1 : 0,
                                    std::memory_order_relaxed);
    save_budget(false);
}

void cost_guard::save_budget(bool now) {
    if (budget_file_.empty()) return;
    const auto record = budget_.record_to_save(wall_now(), now ? std::chrono::seconds{0} : std::chrono::seconds{10});
    if (!record) return;
    if (auto error = save_budget_record(budget_file_, *record)) spdlog::error("budget: cannot save {}: {}", budget_file_, *error);
}

nlohmann::json cost_guard::stats() {
    const auto s = budget_.status(wall_now());
    const auto& zone = budget_.zone();
    auto period = [&](const period_spend& spend, usd_amount limit, double ratio, std::chrono::sys_seconds resets) {
        return nlohmann::json{{"period", spend.key},
                              {"realUsd", spend.real.dollars()},
                              {"estimatedUsd", spend.estimated.dollars()},
                              {"tokens", tokens_json(spend.tokens)},
                              {"budgetUsd", limit.dollars()},
                              {"spentRatio", ratio},
                              {"resetsAt", format_iso8601(resets)},
                              {"resetsAtLocal", zone.format_local(resets)}};
    };
    auto doc = nlohmann::json{{"timeZone", zone.name()},
                              {"day", period(s.day, s.limits.daily, s.day_ratio(), s.day_resets_at)},
                              {"month", period(s.month, s.limits.monthly, s.month_ratio(), s.month_resets_at)},
                              {"budgetExhausted", metrics_.budget_exhausted.load(std::memory_order_relaxed) != 0},
                              {"quotaPausedUntil", nullptr}};
    if (quota_pause_left()) doc["quotaPausedUntil"] = format_iso8601(wall_clock_.to_wall(*quota_paused_until_));
    if (hold_) doc["admissionPaused"] = nlohmann::json::parse(render_admission_hold(*hold_));
    return doc;
}

void cost_guard::describe(admin_context& ctx) {
    const auto s = budget_.status(wall_now());
    if (sideband_) ctx.real_cost_usd = s.day.real.dollars();
    if (!s.limits.daily.is_zero() || !s.limits.monthly.is_zero()) {
        ctx.budget = {{"dailyUsd", s.limits.daily.dollars()},
                      {"spentUsd", s.day.total().dollars()},
                      {"monthlyUsd", s.limits.monthly.dollars()},
                      {"monthSpentUsd", s.month.total().dollars()},
                      {"exhausted", hold_.has_value() && hold_->why == admission_hold::reason::budget_exhausted},
                      {"resetsAt", format_iso8601(s.limits.daily.is_zero() ? s.month_resets_at : s.day_resets_at)}};
    }
    for (const auto& [entry_id, w] : watched_) ctx.session_costs_usd[entry_id] = w.calls->cost().dollars();
    if (quota_pause_left()) ctx.quota_paused_until = wall_clock_.to_wall(*quota_paused_until_);
}

// ---- settings and the timer -------------------------------------------------------------------

void cost_guard::reload(const config& settings) {
    settings_.cost_per_minute_usd = settings.cost_per_minute_usd;
    settings_.cost = settings.cost;
    settings_.cost.budget_zone = budget_.zone();  // the zone the record is kept in stays until a restart
    settings_.openai.instructions = settings.openai.instructions;
    settings_.openai.max_output_tokens = settings.openai.max_output_tokens;
    budget_.set_limits(limits_of(settings), wall_now());
    after_cost_change();
    hooks_.admissions_changed();  // a raised budget may admit at once
}

void cost_guard::shutdown() {
    for (auto& [entry_id, w] : watched_) w.calls->stop();
    for (auto it = watched_.begin(); it != watched_.end(); ++it) {
        for (auto& [call_id, a] : it->second.calls->take_actions()) {
            if (a.what == monitor_action::kind::close_sideband) {
                if (auto c = it->second.sidebands[call_id]) c->close();
            }
        }
    }
    watched_.clear();
    timer_.cancel();
    save_budget(true);
    if (shared_ && shared_->spend_pending()) {
        spdlog::warn("budget: some spending could not be added to the shared budget in Redis before the shutdown");
    }
}

void cost_guard::arm_timer() {
    std::optional<steady_time> due;
    auto consider = [&](std::optional<steady_time> t) {
        if (t && (!due || *t < *due)) due = t;
    };
    for (const auto& [entry_id, w] : watched_) consider(w.calls->next_deadline());
    consider(quota_paused_until_);
    if (hold_ && hold_->why == admission_hold::reason::budget_exhausted) consider(wall_clock_.to_steady(hold_->resumes_at));
    if (!due || (timer_at_ && *timer_at_ == *due)) return;
    timer_at_ = due;
    // The deadlines are on the injected clock; the wait is on the steady one.
    timer_.expires_after(std::max(std::chrono::steady_clock::duration::zero(), *due - now()));
    timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
        if (ec || !*alive) return;
        timer_at_.reset();
        on_timer();
    });
}

void cost_guard::on_timer() {
    const auto t = now();
    std::vector<std::uint64_t> ids;
    for (const auto& [entry_id, w] : watched_) ids.push_back(entry_id);
    for (auto id : ids) {
        if (auto it = watched_.find(id); it != watched_.end()) {
            it->second.calls->on_timer(t);
            drain(id);
        }
    }
    bool recheck = false;
    if (quota_paused_until_ && t >= *quota_paused_until_) {
        quota_paused_until_.reset();
        metrics_.upstream_quota_paused.store(0, std::memory_order_relaxed);
        spdlog::info("cost: the quota pause is over; admissions resume");
        recheck = true;
        if (!hold_) hooks_.admissions_changed();
    }
    const bool stale = hold_ && (hold_->why == admission_hold::reason::upstream_quota ? !quota_paused_until_
                                                                                       : wall_now() >= hold_->resumes_at);
    if (recheck || stale) {
        // The hold goes; the gate puts it back at the next admission if it still applies.
        if (stale) set_hold(std::nullopt);  // tells the service, which rechecks admissions
        after_cost_change();
    }
    arm_timer();
}

}  // namespace voice_broker
