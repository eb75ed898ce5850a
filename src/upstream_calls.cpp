#include "upstream_calls.hpp"

#include "admin_console.hpp"
#include "cost_guard.hpp"
#include "store_answer.hpp"
#include "voice_broker/metrics.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

namespace voice_broker {

namespace net = boost::asio;

upstream_calls::upstream_calls(net::any_io_executor strand, const config& settings, metrics& counters,
                               std::shared_ptr<realtime_upstream> upstream, session_store& store, cost_guard& cost,
                               admin_console& console, hooks h)
    : strand_(std::move(strand)),
      settings_(settings),
      metrics_(counters),
      upstream_(std::move(upstream)),
      store_(store),
      cost_(cost),
      console_(console),
      hooks_(std::move(h)) {}

template <class Result, class Answer>
auto upstream_calls::answering(responder respond, Answer answer) {
    return voice_broker::answering<Result>(std::move(respond), hooks_.note_state, std::move(answer));
}

void upstream_calls::reserve(api_call call, responder respond) {
    if (!upstream_) return respond(openai_not_configured());
    if (const auto left = cost_.quota_pause_left()) return respond(upstream_quota_paused(*left));
    const auto ticket = *call.ticket;  // before `call` moves into the callback
    store_.reserve_token(ticket, max_tokens_per_session,
                         answering<token_reservation>(std::move(respond), [this, call = std::move(call)](
                                                                              responder& r, token_reservation reservation) mutable {
                             if (auto refusal = refuse_reservation(reservation)) return r(std::move(*refusal));
                             if (call.what == api_call::kind::token) return mint(reservation.status, std::move(r));
                             relay(reservation.status, std::move(call), std::move(r));
                         }));
}

void upstream_calls::record(api_call call, responder respond) {
    // Relay mode records its own calls (adopt_relayed_call).
    const auto ticket = *call.ticket;  // before `call` moves into the callback
    store_.status(ticket, answering<std::optional<entry_status>>(std::move(respond), [this, call = std::move(call)](
                                                                                         responder& r, std::optional<entry_status> s) {
                      if (!s) return r(unknown_ticket());
                      if (auto refusal = refuse_call_recording(*s, settings_)) return r(std::move(*refusal));
                      store_.record_call(s->entry_id, call.call_id, answering<call_recording>(std::move(r), [this, call, holder = *s](
                                                                                                   responder& rr, call_recording c) {
                                             if (c == call_recording::recorded) {
                                                 cost_.watch_call(holder.entry_id, holder.expires_at, call.call_id, call.russian);
                                             }
                                             rr(answer_call_recording(c));
                                         }));
                  }));
}

void upstream_calls::mint(const entry_status& holder, responder respond) {
    auto shared = std::make_shared<responder>(std::move(respond));
    upstream_->mint(token_ttl(holder, settings_.openai), [this, alive = hooks_.keep_alive(), shared,
                                                          started = hooks_.clock()](realtime_upstream::mint_result minted) {
        net::post(strand_, [this, alive, minted = std::move(minted), shared, started]() mutable {
            if (minted.response.status == 200) metrics_.tokens_minted.fetch_add(1, std::memory_order_relaxed);
            note_upstream(minted.response, started, minted.quota_exhausted);
            (*shared)(std::move(minted.response));
        });
    });
}

void upstream_calls::relay(const entry_status& holder, api_call call, responder respond) {
    auto shared = std::make_shared<responder>(std::move(respond));
    upstream_->relay_offer(std::move(call.sdp_offer), [this, alive = hooks_.keep_alive(), holder, russian = call.russian, shared,
                                                       started = hooks_.clock()](realtime_upstream::call_result result) {
        net::post(strand_, [this, alive, holder, russian, result = std::move(result), shared, started]() mutable {
            note_upstream(result.response, started, result.quota_exhausted);
            // A call that exists upstream is billed: one the answer could not carry is ended now.
            if (result.orphan_call_id) hang_up(*result.orphan_call_id);
            if (result.call_id) adopt_relayed_call(holder, *result.call_id, russian);
            (*shared)(std::move(result.response));
        });
    });
}

// For the console's health view: the upstream's last error and its latency.  Out of credit
// pauses admissions, and the page's 503 says for how long.
void upstream_calls::note_upstream(http_response& res, steady_time started, bool quota_exhausted) {
    std::string code;
    if (res.status >= 400) {
        const auto doc = nlohmann::json::parse(res.body_view(), nullptr, false);
        if (doc.is_object() && doc.contains("error") && doc["error"].is_object()) code = doc["error"].value("code", "");
    }
    console_.note_upstream(res.status, std::move(code), std::chrono::duration_cast<std::chrono::milliseconds>(hooks_.clock() - started));
    if (!quota_exhausted) return;
    cost_.quota_exhausted();
    if (const auto left = cost_.quota_pause_left()) res.set_header("Retry-After", std::to_string(*left));
}

// A call the server opened for this session: kept for the hang-up and watched, or, when the
// session ended while the call was being opened (or the store cannot keep it), ended at once.
void upstream_calls::adopt_relayed_call(const entry_status& holder, const std::string& call_id, bool russian) {
    store_.record_call(holder.entry_id, call_id, [this, holder, call_id, russian](store_error error, call_recording recorded) {
        if (error == store_error::none && recorded == call_recording::recorded) {
            return cost_.watch_call(holder.entry_id, holder.expires_at, call_id, russian);
        }
        hang_up(call_id);
    });
}

void upstream_calls::hang_up(const std::string& call_id) {
    if (!upstream_) return;
    upstream_->hang_up(call_id);
    metrics_.hangups_sent.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace voice_broker
