#include "voice_broker/call_monitor.hpp"

#include <algorithm>

namespace voice_broker {

namespace {

const nlohmann::json& member(const nlohmann::json& object, const char* key) {
    static const nlohmann::json null_value;
    if (!object.is_object()) return null_value;
    const auto it = object.find(key);
    return it == object.end() ? null_value : *it;
}

std::string string_member(const nlohmann::json& object, const char* key) {
    const auto& v = member(object, key);
    return v.is_string() ? v.get<std::string>() : std::string{};
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

call_monitor_settings make_call_monitor_settings(const config& c) {
    call_monitor_settings s;
    s.model = c.openai.model;
    s.instructions = c.openai.instructions;
    s.voice = c.openai.voice;
    s.tools = nlohmann::json::array();  // the server gives the assistant no tools
    s.max_output_tokens = c.openai.max_output_tokens;
    s.transcription_model = c.openai.transcription_model;
    s.wrap_up_before = c.cost.wrap_up;
    s.wrap_up_en = c.cost.wrap_up_instructions_en;
    s.wrap_up_ru = c.cost.wrap_up_instructions_ru;
    s.silence_timeout = c.cost.silence_timeout;
    s.call_lost_grace = c.cost.call_lost_grace;
    return s;
}

call_monitor::call_monitor(call_monitor_settings settings, price_table prices, steady_time session_end, language lang,
                           bool wrap_up_due, steady_time now)
    : settings_(std::move(settings)),
      prices_(std::move(prices)),
      session_end_(session_end),
      language_(lang),
      wrap_up_(settings_.wrap_up_before.count() <= 0 ? wrap_up_state::off
               : wrap_up_due                         ? wrap_up_state::due
                                                     : wrap_up_state::done),
      last_activity_(now),
      model_(settings_.model) {
    if (!settings_.tools.is_array()) settings_.tools = nlohmann::json::array();
}

std::string call_monitor::next_event_id(const char* purpose) {
    return std::string("vb_") + purpose + "_" + std::to_string(++event_counter_);
}

// ---- the sideband's life -----------------------------------------------------------------

void call_monitor::sideband_opened(steady_time now) {
    if (stopped_ || call_ != call_state::live) return;
    sideband_ = sideband_state::open;
    opened_once_ = true;
    reconnect_at_.reset();
    // What happened while we could not see is unknown: silence counts from now, and nobody is
    // taken to be speaking.
    user_speaking_ = false;
    responses_active_ = 0;
    audio_playing_ = false;
    activity(now);
    idle_reported_ = false;
    send_sync();
    maybe_wrap_up(now);
}

void call_monitor::sideband_ended(const sideband_end_info& why, steady_time now) {
    if (stopped_ || call_ != call_state::live) return;
    using kind = sideband_end_info::kind;
    if (why.what == kind::closed && why.close_code == 1000) {
        // A clean close of an open sideband is how the API ends a call's connections.
        return call_over("the call ended upstream (sideband closed normally)", now);
    }
    if (why.what == kind::refused && why.http_status == 404) {
        return call_over("the call is unknown or over upstream (404)", now);
    }
    gap_ = true;  // responses may go by unseen until it is back
    const bool permanent = why.what == kind::refused && (why.http_status == 401 || why.http_status == 403);
    if (!permanent && reconnects_ < settings_.max_reconnects) {
        sideband_ = sideband_state::reconnecting;
        reconnect_at_ = now + settings_.first_reconnect_delay * (1 << reconnects_);
        ++reconnects_;
        return;
    }
    sideband_ = sideband_state::lost;
    reconnect_at_.reset();
    std::string detail;
    switch (why.what) {
    case kind::closed:
        detail = "closed with " + std::to_string(why.close_code);
        break;
    case kind::refused:
        detail = "refused with HTTP " + std::to_string(why.http_status);
        break;
    case kind::failed:
        detail = why.detail.empty() ? "could not connect" : why.detail;
        break;
    }
    if (reconnects_ > 0) detail += " after " + std::to_string(reconnects_) + " reconnect(s)";
    push({.what = monitor_action::kind::sideband_failed, .detail = detail});
}

void call_monitor::call_over(const std::string& why, steady_time now) {
    sideband_ = sideband_state::gone;
    call_ = call_state::ending;
    reconnect_at_.reset();
    wrap_up_response_at_.reset();
    lost_at_ = now + settings_.call_lost_grace;
    pending_revert_id_.clear();
    last_activity_ = now;
    lost_reason_ = why;  // for the call_lost action
}

void call_monitor::stop() {
    stopped_ = true;
    call_ = call_state::ended;
    reconnect_at_.reset();
    lost_at_.reset();
    wrap_up_response_at_.reset();
}

// ---- server events -----------------------------------------------------------------------

void call_monitor::on_event(const nlohmann::json& event, steady_time now) {
    if (stopped_ || call_ != call_state::live || !event.is_object()) return;
    const auto type = string_member(event, "type");
    if (type.empty()) return;
    reconnects_ = 0;  // the sideband works again

    if (type == "session.updated" || type == "session.created") {
        on_session_updated(member(event, "session"));
    } else if (type == "input_audio_buffer.speech_started") {
        user_speaking_ = true;
        activity(now);
        idle_reported_ = false;
    } else if (type == "input_audio_buffer.speech_stopped") {
        user_speaking_ = false;
        activity(now);
        idle_reported_ = false;
        // Turn detection usually answers now; give it a moment before asking for the wrap-up.
        if (wrap_up_ == wrap_up_state::waiting_for_response) wrap_up_response_at_ = now + settings_.wrap_up_response_wait;
    } else if (type == "response.created") {
        ++responses_active_;
        activity(now);
        idle_reported_ = false;
        // A response that starts after our message was added reads it: it is the wrap-up.
        if (wrap_up_ == wrap_up_state::waiting_for_response && wrap_up_item_confirmed_) {
            wrap_up_ = wrap_up_state::done;
            wrap_up_response_at_.reset();
        }
    } else if (type == "response.done") {
        responses_active_ = std::max(0, responses_active_ - 1);
        activity(now);
        idle_reported_ = false;
        assistant_has_spoken_ = true;
        on_usage(member(member(event, "response"), "usage"), model_, false);
        maybe_request_wrap_up_response(now);
    } else if (type == "output_audio_buffer.started") {
        audio_playing_ = true;
        assistant_has_spoken_ = true;
        activity(now);
        idle_reported_ = false;
    } else if (type == "output_audio_buffer.stopped" || type == "output_audio_buffer.cleared") {
        audio_playing_ = false;
        activity(now);
        idle_reported_ = false;
    } else if (type == "conversation.item.added" || type == "conversation.item.created") {
        const auto& item = member(event, "item");
        if (!wrap_up_item_id_.empty() && string_member(item, "id") == wrap_up_item_id_) {
            wrap_up_item_confirmed_ = true;
        } else if (string_member(item, "role") != "system") {
            activity(now);
            idle_reported_ = false;
        }
    } else if (type == "conversation.item.input_audio_transcription.completed") {
        activity(now);
        idle_reported_ = false;
        on_usage(member(event, "usage"), settings_.transcription_model, true);
    } else if (type == "error") {
        on_error(event, now);
    }
    maybe_wrap_up(now);
}

void call_monitor::on_usage(const nlohmann::json& usage_json, const std::string& model, bool transcription) {
    const auto parsed = transcription ? token_usage::from_transcription_usage(usage_json)
                                      : token_usage::from_response_usage(usage_json);
    if (!parsed || parsed->empty()) return;
    const model_prices* prices = prices_.find(model);
    std::string priced_as = model;
    if (!prices && !transcription) {  // a model the page switched to that the table lacks
        prices = prices_.find(settings_.model);
        priced_as = settings_.model;
    }
    monitor_action a{.what = monitor_action::kind::usage, .usage = *parsed, .model = priced_as};
    if (prices) {
        a.cost = prices->cost(*parsed);
    } else {
        a.priced = false;
        all_priced_ = false;
    }
    usage_ += *parsed;
    cost_ += a.cost;
    push(std::move(a));
}

// ---- the server's session settings -------------------------------------------------------

void call_monitor::on_session_updated(const nlohmann::json& session) {
    if (!session.is_object()) return;
    if (const auto m = string_member(session, "model"); !m.empty()) model_ = m;
    std::vector<std::string> changed;
    if (session.contains("instructions") && string_member(session, "instructions") != settings_.instructions) {
        changed.push_back("instructions");
    }
    if (session.contains("model") && model_ != settings_.model) changed.push_back("model");
    const auto& voice = member(member(member(session, "audio"), "output"), "voice");
    if (voice.is_string() && voice.get<std::string>() != settings_.voice) changed.push_back("voice");
    if (session.contains("tools")) {
        const auto& tools = session["tools"];
        const bool same = settings_.tools.empty() ? (tools.is_null() || (tools.is_array() && tools.empty()))
                                                  : tools == settings_.tools;
        if (!same) changed.push_back("tools");
    }
    if (session.contains("max_output_tokens")) {
        const auto& limit = session["max_output_tokens"];
        const bool same = settings_.max_output_tokens ? (limit.is_number_integer() && limit.get<long long>() == *settings_.max_output_tokens)
                                                      : limit == "inf";
        if (!same) changed.push_back("max_output_tokens");
    }
    std::erase_if(changed, [this](const std::string& f) { return contains(unrevertable_, f); });
    if (changed.empty()) return;
    send_revert(changed, true);
}

void call_monitor::send_revert(const std::vector<std::string>& fields, bool counted) {
    nlohmann::json session = {{"type", "realtime"}};
    for (const auto& f : fields) {
        if (f == "instructions") session["instructions"] = settings_.instructions;
        else if (f == "model") session["model"] = settings_.model;
        else if (f == "voice") session["audio"] = {{"output", {{"voice", settings_.voice}}}};
        else if (f == "tools") session["tools"] = settings_.tools;
        else if (f == "max_output_tokens") {
            session["max_output_tokens"] = settings_.max_output_tokens ? nlohmann::json(*settings_.max_output_tokens)
                                                                       : nlohmann::json("inf");
        }
    }
    pending_revert_id_ = next_event_id("revert");
    pending_revert_fields_ = fields;
    push({.what = monitor_action::kind::send,
          .event = nlohmann::json{{"type", "session.update"}, {"event_id", pending_revert_id_}, {"session", session}}.dump()});
    if (counted) push({.what = monitor_action::kind::session_reverted, .fields = fields});
}

// Our values once per open: a page may have changed them before the sideband attached.  Model
// and voice are left out: the API refuses to set them once audio has flowed, even to the same
// value; session.updated then shows them, and they are reverted if the page changed them.
void call_monitor::send_sync() {
    nlohmann::json session = {{"type", "realtime"},
                              {"instructions", settings_.instructions},
                              {"tools", settings_.tools},
                              {"max_output_tokens", settings_.max_output_tokens ? nlohmann::json(*settings_.max_output_tokens)
                                                                                : nlohmann::json("inf")}};
    push({.what = monitor_action::kind::send,
          .event = nlohmann::json{{"type", "session.update"}, {"event_id", next_event_id("sync")}, {"session", session}}.dump()});
}

void call_monitor::on_error(const nlohmann::json& event, steady_time now) {
    const auto& error = member(event, "error");
    auto id = string_member(error, "event_id");
    if (id.empty()) id = string_member(event, "event_id");
    const auto code = string_member(error, "code");
    const auto message = string_member(error, "message");
    if (!pending_revert_id_.empty() && id == pending_revert_id_) {
        // A rejected update is discarded whole: send it again without what the API will not
        // change back (the voice once the assistant has spoken; the model).
        const char* refused = code == "cannot_update_voice" ? "voice" : code == "cannot_update_model" ? "model" : nullptr;
        pending_revert_id_.clear();
        if (refused) {
            unrevertable_.push_back(refused);
            auto rest = pending_revert_fields_;
            std::erase_if(rest, [this](const std::string& f) { return contains(unrevertable_, f); });
            push({.what = monitor_action::kind::upstream_error,
                  .detail = std::string("the page changed the ") + refused + ", which the API will not change back (" + code + ")"});
            if (!rest.empty()) send_revert(rest, false);
            return;
        }
        push({.what = monitor_action::kind::upstream_error, .detail = "session.update refused: " + code + " " + message});
        return;
    }
    if (!wrap_up_response_id_.empty() && id == wrap_up_response_id_ && code == "conversation_already_has_active_response") {
        // A response slipped in first: ask again when it is done.
        wrap_up_ = wrap_up_state::waiting_for_response;
        wrap_up_response_at_.reset();
        maybe_request_wrap_up_response(now);
        return;
    }
    if (id.rfind("vb_", 0) == 0) {
        push({.what = monitor_action::kind::upstream_error, .detail = id + " refused: " + code + " " + message});
    }
}

// ---- wrap-up -----------------------------------------------------------------------------

void call_monitor::maybe_wrap_up(steady_time now) {
    if (wrap_up_ != wrap_up_state::due || stopped_ || call_ != call_state::live || sideband_ != sideband_state::open) return;
    if (now < session_end_ - settings_.wrap_up_before) return;
    if (now >= session_end_) {
        wrap_up_ = wrap_up_state::done;  // too late to say goodbye
        return;
    }
    const auto& text = language_ == language::ru && !settings_.wrap_up_ru.empty() ? settings_.wrap_up_ru : settings_.wrap_up_en;
    wrap_up_item_id_ = "vb_wrap_up_" + std::to_string(++event_counter_);
    wrap_up_item_confirmed_ = false;
    push({.what = monitor_action::kind::send,
          .event = nlohmann::json{{"type", "conversation.item.create"},
                                  {"event_id", next_event_id("wrap_up")},
                                  {"item",
                                   {{"id", wrap_up_item_id_},
                                    {"type", "message"},
                                    {"role", "system"},
                                    {"content", {{{"type", "input_text"}, {"text", text}}}}}}}
                       .dump()});
    push({.what = monitor_action::kind::wrap_up_sent});
    wrap_up_ = wrap_up_state::waiting_for_response;
    wrap_up_response_at_.reset();
    maybe_request_wrap_up_response(now);
}

// Asks for the wrap-up response when nobody is speaking; while the visitor speaks or a response
// runs, it waits (the API refuses a second active response, and turn detection will answer).
void call_monitor::maybe_request_wrap_up_response(steady_time now) {
    if (wrap_up_ != wrap_up_state::waiting_for_response || sideband_ != sideband_state::open) return;
    if (responses_active_ > 0 || user_speaking_) return;
    if (wrap_up_response_at_ && now < *wrap_up_response_at_) return;
    send_response_create();
}

void call_monitor::send_response_create() {
    wrap_up_response_id_ = next_event_id("wrap_up_response");
    push({.what = monitor_action::kind::send,
          .event = nlohmann::json{{"type", "response.create"}, {"event_id", wrap_up_response_id_}}.dump()});
    wrap_up_ = wrap_up_state::done;
    wrap_up_response_at_.reset();
}

// ---- time --------------------------------------------------------------------------------

std::optional<steady_time> call_monitor::idle_at() const {
    if (settings_.silence_timeout.count() <= 0 || stopped_ || call_ != call_state::live ||
        sideband_ != sideband_state::open || active()) {
        return std::nullopt;
    }
    return last_activity_ + settings_.silence_timeout;
}

void call_monitor::on_timer(steady_time now) {
    if (stopped_) return;
    if (reconnect_at_ && now >= *reconnect_at_) {
        reconnect_at_.reset();
        sideband_ = sideband_state::connecting;
        push({.what = monitor_action::kind::reconnect_sideband});
    }
    if (call_ == call_state::ending && lost_at_ && now >= *lost_at_) {
        call_ = call_state::ended;
        lost_at_.reset();
        push({.what = monitor_action::kind::call_lost, .detail = lost_reason_});
        return;
    }
    maybe_wrap_up(now);
    maybe_request_wrap_up_response(now);
    if (const auto at = idle_at(); at && !idle_reported_ && now >= *at) {
        idle_reported_ = true;
        push({.what = monitor_action::kind::idle});
    }
}

std::optional<steady_time> call_monitor::next_deadline() const {
    if (stopped_) return std::nullopt;
    std::optional<steady_time> next;
    auto consider = [&next](std::optional<steady_time> t) {
        if (t && (!next || *t < *next)) next = t;
    };
    consider(reconnect_at_);
    if (call_ == call_state::ending) consider(lost_at_);
    if (wrap_up_ == wrap_up_state::due && sideband_ == sideband_state::open && call_ == call_state::live) {
        consider(session_end_ - settings_.wrap_up_before);
    }
    if (wrap_up_ == wrap_up_state::waiting_for_response) consider(wrap_up_response_at_);
    if (!idle_reported_) consider(idle_at());
    return next;
}

}  // namespace voice_broker
