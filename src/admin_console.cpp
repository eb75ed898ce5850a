#include "admin_console.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/client_identity.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/session_api.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace voice_broker {

namespace net = boost::asio;
using json = nlohmann::json;

namespace {

http_response refusal(const admin_auth::verdict& v) {
    switch (v.what) {
    case admin_auth::verdict::kind::disabled: return admin_disabled();
    case admin_auth::verdict::kind::throttled: {
        auto res = api_error(429, "too_many_attempts", "Too many wrong admin tokens from this address; wait and retry.");
        res.set_header("Retry-After", std::to_string(v.retry_after));
        return res;
    }
    default: return admin_unauthorized();
    }
}

std::shared_ptr<const std::string> shared_text(std::string text) { return std::make_shared<const std::string>(std::move(text)); }

double percentile(std::vector<double> values, double p) {
    std::sort(values.begin(), values.end());
    const auto at = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
    return values[std::min(at, values.size() - 1)];
}

}  // namespace

admin_console::admin_console(const net::any_io_executor& strand, session_store& store, std::shared_ptr<admin_auth> auth,
                             const config& settings, const wall_clock_mapping& wall_clock, metrics& counters, hooks h)
    : strand_(strand),
      store_(store),
      auth_(std::move(auth)),
      settings_(settings),
      wall_clock_(wall_clock),
      metrics_(counters),
      hooks_(std::move(h)),
      tick_(strand),
      alive_(std::make_shared<bool>(true)) {}

admin_console::~admin_console() {
    *alive_ = false;
    tick_.cancel();
}

void admin_console::reload(const config& settings) {
    settings_.admin_token = settings.admin_token;
    auth_->set_token(settings.admin_token);
}

void admin_console::handle(const http_request& req, responder respond) {
    auto parsed = parse_admin_api(req);
    if (auto* answer = std::get_if<http_response>(&parsed)) return respond(std::move(*answer));
    const auto& call = std::get<admin_call>(parsed);
    const auto now = hooks_.clock();
    // A state change must come from this site's own page (a script with the token may omit Origin).
    const bool has_origin = !req.header("origin").empty();
    if (call.changes_state && !origin_allowed(settings_.trusted_proxies, req)) return respond(admin_bad_origin());
    if (call.what == admin_call::kind::login) {
        if (!has_origin) return respond(admin_bad_origin());
        const auto v = auth_->login(call.token, req.client_address, now);
        if (v.what != admin_auth::verdict::kind::ok) {
            spdlog::warn("admin: login_failed by=cookie login=- from={} request={}", req.client_address, req.request_id);
            return respond(refusal(v));
        }
        audit("login", "-", req, v);
        auto res = json_response(200, {{"ok", true}, {"expiresInSeconds", auth_->login_lifetime().count()}});
        res.set_header("Set-Cookie", admin_cookie_header(v.login_id, req.secure, auth_->login_lifetime()));
        return respond(std::move(res));
    }
    if (call.what == admin_call::kind::login_status) {
        const auto cookie = req.cookie(admin_cookie);
        const auto left = cookie ? auth_->seconds_left(*cookie, now) : std::nullopt;
        if (!left) return respond(json_response(200, {{"signedIn", false}}));
        return respond(json_response(200, {{"signedIn", true}, {"expiresInSeconds", *left}}));
    }
    const auto who = auth_->check(req.cookie(admin_cookie), req.header("x-admin-token"), req.client_address, now, true);
    if (who.what != admin_auth::verdict::kind::ok) return respond(refusal(who));
    if (call.changes_state && !has_origin && !who.by_header) return respond(admin_bad_origin());
    run(req, call, who, std::move(respond));
}

void admin_console::run(const http_request& req, const admin_call& call, const admin_auth::verdict& who, responder respond) {
    // Every authenticated answer renews the login's cookie with it.
    auto answering = [this, &req, &who](responder r) {
        return std::make_shared<responder>(responder([r = std::make_shared<responder>(std::move(r)), cookie = who.login_id,
                                                      secure = req.secure, lifetime = auth_->login_lifetime()](http_response res) {
            if (!cookie.empty() && res.status < 300) res.set_header("Set-Cookie", admin_cookie_header(cookie, secure, lifetime));
            (*r)(std::move(res));
        }));
    };
    if (call.what == admin_call::kind::logout) {  // the one answer that takes the cookie back
        audit("logout", "-", req, who);
        if (!who.login_id.empty()) auth_->logout(who.login_id);
        auto res = json_response(200, {{"ok", true}});
        res.set_header("Set-Cookie", admin_cookie_header("", req.secure, auth_->login_lifetime()));
        return respond(std::move(res));  // its consoles close at the next tick (4401)
    }
    auto r = answering(std::move(respond));
    switch (call.what) {
    case admin_call::kind::state: return answer_state(std::move(*r));
    case admin_call::kind::end_session:
        audit("end_session", "id=" + std::to_string(call.entry_id), req, who);
        return store_.end_session(call.entry_id, end_reason::forced, [r](store_error e, bool ended) {
            if (e != store_error::none) return (*r)(store_unavailable());
            (*r)(ended ? json_response(200, {{"ended", true}})
                       : api_error(404, "unknown_session", "No active session has this id."));
        });
    case admin_call::kind::remove_queued:
        audit("remove", "id=" + std::to_string(call.entry_id), req, who);
        return store_.remove_queued(call.entry_id, [r](store_error e, bool removed) {
            if (e != store_error::none) return (*r)(store_unavailable());
            (*r)(removed ? json_response(200, {{"removed", true}})
                         : api_error(404, "unknown_entry", "Nobody with this id waits in the queue."));
        });
    case admin_call::kind::end_all:
        audit("end_all", "-", req, who);
        return store_.force_end_all([r](store_error e, std::size_t n) {
            if (e != store_error::none) return (*r)(store_unavailable());
            (*r)(json_response(200, {{"endedSessions", n}}));
        });
    case admin_call::kind::pause:
    case admin_call::kind::resume: {
        const bool pause = call.what == admin_call::kind::pause;
        audit(pause ? "pause" : "resume", "-", req, who);
        return store_.set_paused(pause, [this, r](store_error e, bool paused) {
            if (e != store_error::none) return (*r)(store_unavailable());
            if (hooks_.rules_changed) hooks_.rules_changed();
            note_change();
            (*r)(json_response(200, {{"paused", paused}}));
        });
    }
    case admin_call::kind::limits: {
        std::string target;
        if (call.limits.max_concurrent_users) target += "maxConcurrentUsers=" + std::to_string(*call.limits.max_concurrent_users);
        if (call.limits.session_duration) {
            target += (target.empty() ? "" : " ") + std::string("sessionDurationSeconds=") + std::to_string(call.limits.session_duration->count());
        }
        audit("limits", target.empty() ? "-" : target, req, who);
        return store_.change_limits(call.limits, [this, r](store_error e, session_limits limits) {
            if (e != store_error::none) return (*r)(store_unavailable());
            if (hooks_.rules_changed) hooks_.rules_changed();
            note_change();
            (*r)(json_response(200, {{"limits",
                                      {{"maxConcurrentUsers", limits.max_concurrent_users},
                                       {"sessionDurationMinutes", static_cast<double>(limits.session_duration.count()) / 60.0},
                                       {"maxQueueLength", limits.max_queue_length}}}}));
        });
    }
    case admin_call::kind::logout:
    case admin_call::kind::login:
    case admin_call::kind::login_status: break;  // answered above
    }
}

void admin_console::audit(const char* action, const std::string& target, const http_request& req,
                          const admin_auth::verdict& who) const {
    spdlog::info("admin: {} {} by={} login={} from={} request={}", action, target, who.by_header ? "header" : "cookie",
                 who.short_login(), req.client_address.empty() ? "-" : req.client_address, req.request_id);
}

admin_context admin_console::context() const {
    admin_context ctx;
    ctx.instance = settings_.store.instance_id;
    ctx.redis = settings_.store.kind == store_kind::redis;
    ctx.store_healthy = store_.available();
    ctx.mode = settings_.openai.mode;
    ctx.upstream = upstream_;
    ctx.connections = static_cast<std::size_t>(std::max<std::int64_t>(0, metrics_.open_connections.load()));
    return ctx;
}

void admin_console::build_state(std::function<void(store_error, std::string)> done) {
    store_.admin_view([this, alive = alive_, done = std::move(done)](store_error e, store_admin_view view) {
        if (!*alive) return;
        if (e != store_error::none) return done(e, {});
        const auto now = hooks_.clock();
        std::chrono::milliseconds running{0};
        for (const auto& a : view.entries) {
            if (a.entry.state == entry_state::active) running += std::chrono::duration_cast<std::chrono::milliseconds>(now - a.entry.started_at);
        }
        auto ctx = context();
        ctx.today = hooks_.today(view.today, running);
        if (hooks_.add_cost) hooks_.add_cost(ctx);
        done(store_error::none, admin_state_document(view, ctx, now, wall_clock_).dump());
    });
}

void admin_console::answer_state(responder respond) {
    auto r = std::make_shared<responder>(std::move(respond));
    build_state([r](store_error e, std::string body) {
        if (e != store_error::none) return (*r)(store_unavailable());
        http_response res;
        res.set_header("Content-Type", "application/json");
        res.set_header("Cache-Control", "no-store");
        res.body = std::move(body);
        (*r)(std::move(res));
    });
}

void admin_console::open_channel(channel_id id, const std::string& login_id, std::shared_ptr<live_channel> channel) {
    channels_.push_back({id, login_id, std::move(channel)});
    dirty_ = true;
    push_state();
    arm_tick();
}

bool admin_console::close_channel(channel_id id) {
    const auto before = channels_.size();
    std::erase_if(channels_, [id](const console_channel& c) { return c.id == id; });
    return channels_.size() != before;
}

void admin_console::close_all(live_channel::close_reason why) {
    for (auto& c : channels_) c.channel->finish(why);
    channels_.clear();
}

void admin_console::note_change() {
    if (channels_.empty()) return;
    dirty_ = true;
    push_state();
}

void admin_console::note_upstream(unsigned status, std::string code, std::chrono::milliseconds latency) {
    const auto now = hooks_.clock();
    if (status >= 400) {
        upstream_.last_error_status = status;
        upstream_.last_error_code = std::move(code);
        upstream_.last_error_at = now;
    }
    latencies_.emplace_back(now, static_cast<double>(latency.count()));
    while (!latencies_.empty() && now - latencies_.front().first > std::chrono::minutes{5}) latencies_.pop_front();
    while (latencies_.size() > 1000) latencies_.pop_front();
    std::vector<double> values;
    for (const auto& [at, ms] : latencies_) values.push_back(ms);
    upstream_.latency_p50_ms = percentile(values, 0.5);
    upstream_.latency_p90_ms = percentile(values, 0.9);
}

// One state document at a time; changes meanwhile make the next one.
void admin_console::push_state() {
    if (building_ || !dirty_ || channels_.empty()) return;
    building_ = true;
    dirty_ = false;
    build_state([this](store_error e, std::string body) {
        building_ = false;
        if (e == store_error::none) {
            const auto msg = shared_text("{\"type\":\"state\"," + body.substr(1));
            for (auto& c : channels_) c.channel->push(msg, true);
        }
        push_state();
    });
}

// Once a second while a console is open: the time left ticks, and logins that ended close.
void admin_console::arm_tick() {
    if (ticking_ || channels_.empty()) return;
    ticking_ = true;
    tick_.expires_after(std::chrono::seconds{1});
    tick_.async_wait([this, alive = alive_](boost::system::error_code ec) {
        if (ec || !*alive) return;
        ticking_ = false;
        const auto now = hooks_.clock();
        std::erase_if(channels_, [&](console_channel& c) {
            if (c.login_id.empty() || auth_->valid(c.login_id, now)) return false;
            c.channel->finish(live_channel::close_reason::signed_out);
            return true;
        });
        if (store_.active_count() > 0) dirty_ = true;
        push_state();
        arm_tick();
    });
}

}  // namespace voice_broker
