// The request path of today, without sockets, as fuzz_http_api, fuzz_call_body and fuzz_sdp_offer
// drive it: the bytes of one HTTP/1.1 connection go through Beast's request_parser with the
// server's limits and the RFC 9112 framing rules (a fresh parser per request, pipelined requests
// included, exactly as http_session::parse does), each request becomes the router's
// http_request (http_session's to_plain_request, copied: it is private there), router::route()
// decides, and a session_api decision goes to the real session service over a memory store
// (service_options: a hand-moved clock, deterministic tickets "tk1_fuzzticket000000",
// "tk2_...", so that a seed can name them), with a recording realtime_upstream, polled on an
// io_context.  A live_channel decision opens a recording channel on the service.
//
// What every answer must satisfy (check_answer): exactly one answer per request, never 500; a
// known status; an error is JSON {"error":{"code","message"}} and nothing else; Allow on 405;
// no header value with CR or LF; Set-Cookie only on join and leave; neither the admin token nor
// the OpenAI key anywhere (answers, pushes, log lines); no visitor's ticket in another visitor's
// answer or push, and none at all in a stats answer or a log line.  And of the upstream: a key
// is minted only for action=token, at most 3 per ticket, with a TTL in 10..7200 s; an offer is
// relayed only for action=connect, unchanged; every call hung up was recorded, and at shutdown
// every recorded call is hung up exactly once.
#pragma once

#include "fuzz_support.hpp"
#include "memory_store.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/ascii.hpp"
#include "voice_broker/config.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/net.hpp"
#include "voice_broker/parsed_head.hpp"
#include "voice_broker/realtime_upstream.hpp"
#include "voice_broker/request_framing.hpp"
#include "voice_broker/router.hpp"
#include "voice_broker/session_api.hpp"
#include "voice_broker/session_service.hpp"
#include "voice_broker/static_files.hpp"
#include "voice_broker/visitor_ticket.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace voice_broker::fuzzing {

inline const std::string admin_token = "fuzz-admin-token-0123456789abcdef";
inline const std::string openai_key = "sk-fuzz.openai.key.0123456789abcdef";

inline std::string fuzz_ticket(int n) { return "tk" + std::to_string(n) + "_fuzzticket000000"; }

// A header the harness reads (the server ignores it): after this request, move the clock on by
// this many seconds (0..3600; default 1) and let the store act on its deadlines.
inline constexpr std::string_view advance_header = "x-fuzz-advance";

// Records what the service asks of OpenAI and answers at once, as OpenAI would.
class recording_upstream final : public realtime_upstream {
public:
    std::vector<std::chrono::seconds> minted_ttls;
    std::vector<std::string> offers;
    std::vector<std::string> hangups;

    void mint_token(std::chrono::seconds ttl, std::function<void(http_response)> done) override {
        minted_ttls.push_back(ttl);
        done(json_response(200, {{"value", "ek_fuzz_" + std::to_string(minted_ttls.size())}, {"expires_at", 1795514460}}));
    }
    void relay_offer(std::string sdp_offer, std::function<void(call_result)> done) override {
        offers.push_back(std::move(sdp_offer));
        http_response res;
        res.status = 201;
        res.set_header("Content-Type", "application/sdp");
        res.body = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
        done({std::move(res), "rtc_relayed_" + std::to_string(offers.size())});
    }
    void hang_up(std::string call_id) override { hangups.push_back(std::move(call_id)); }
};

// A live channel that keeps what the service pushed.  (One thread: the fuzzer's.)
class recording_channel final : public live_channel {
public:
    explicit recording_channel(std::string ticket) : ticket(std::move(ticket)) {}
    void push(std::shared_ptr<const std::string> message, bool) override { pushes.push_back(*message); }
    void finish(close_reason) override { ++finishes; }

    std::string ticket;  // the visitor's, as the router found it
    std::vector<std::string> pushes;
    int finishes = 0;
};

// Every log line's text, before the formatter's last-line-of-defence redaction.
class capturing_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    std::vector<std::string> lines;

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override { lines.emplace_back(msg.payload.data(), msg.payload.size()); }
    void flush_() override {}
};

inline bool contains(std::string_view haystack, std::string_view needle) {
    return !needle.empty() && haystack.find(needle) != std::string_view::npos;
}

inline std::string describe(const http_request& req) {
    std::string out = req.method + " " + req.target;
    for (const auto& [name, value] : req.headers) out += "\n" + name + ": " + value;
    if (!req.body.empty()) out += "\n\n" + req.body.substr(0, 300);
    return out;
}

// One answer the harness saw, with the request it answers.
struct exchange_record {
    http_request req;
    http_response res;
    bool from_service = false;  // a session_api decision (else the router answered)
};

class api_world {
public:
    explicit api_world(realtime_mode mode = realtime_mode::token) {
        settings_.admin_token = admin_token;
        settings_.openai.api_key = openai_key;
        settings_.openai.mode = mode;
        settings_.session.max_concurrent_users = 1;
        settings_.session.max_queue_length = 8;
        settings_.session.session_duration = std::chrono::seconds{120};
        settings_.session.warnings = {std::chrono::seconds{60}, std::chrono::seconds{30}};
        settings_.session.heartbeat_timeout = std::chrono::seconds{30};
        settings_.session.admission_grace = std::chrono::seconds{20};
        // X-Forwarded-For is believed from loopback, so inputs can speak for many addresses.
        routing_.trusted_proxies = {*ip_network::parse("127.0.0.0/8")};
        dir_.write("index.html", "<!doctype html><title>voice</title><script type=module src=/app.js></script>" + std::string(300, ' '));
        dir_.write("app.js", "export const x = 1;" + std::string(300, ' '));
        files_ = static_files::load(dir_.path().string());
        log_ = std::make_shared<capturing_sink>();
        auto logger = std::make_shared<spdlog::logger>("fuzz", log_);
        logger->set_level(spdlog::level::trace);
        spdlog::set_default_logger(logger);
    }

    ~api_world() { stop(); }

    config& settings() { return settings_; }
    recording_upstream& upstream() { return *upstream_; }
    const std::vector<std::string>& issued() const { return issued_; }
    const std::vector<std::shared_ptr<recording_channel>>& channels() const { return channels_; }

    // A fresh service (and router) at the start time, nothing issued, nothing recorded.
    void reset() {
        stop();
        now_ = start_;
        issued_.clear();
        channels_.clear();
        recorded_.clear();
        mints_.clear();
        log_->lines.clear();
        upstream_ = std::make_shared<recording_upstream>();
        service_options options;
        options.clock = [this] { return now_; };
        options.wall_clock = wall_clock_mapping{start_, std::chrono::system_clock::time_point{} + std::chrono::seconds{1795514400}};
        options.new_ticket = [this] {
            issued_.push_back(fuzz_ticket(static_cast<int>(issued_.size()) + 1));
            return issued_.back();
        };
        options.make_store = [this](const boost::asio::any_io_executor& strand, std::function<steady_time()> clock) {
            auto made = make_memory_store(strand, {settings_.session, {}, "fuzz-1", std::move(clock), {}});
            store_ = made.get();
            return std::unique_ptr<session_store>(std::move(made));
        };
        service_ = session_service::create(ioc_, settings_, counters_, upstream_, std::move(options));
        routes_.emplace(routing_, service_, counters_, files_);
    }

    // Ends every session (as a single instance does when it stops) and checks the end state:
    // every channel finished, every recorded call hung up exactly once.
    void stop() {
        if (!service_) return;
        bool done = false;
        service_->shutdown(true, [&done] { done = true; });
        poll_until([&] { return done; }, "shutdown");
        for (const auto& c : channels_) {
            FUZZ_CHECK(c->finishes >= 1, "a live channel was not closed at shutdown: " + c->ticket);
            check_pushes(*c);
        }
        check_hangups(true);
        check_logs();
        routes_.reset();
        store_ = nullptr;
        service_.reset();
        poll_until([] { return false; }, nullptr);  // what is left (the cancelled timer) runs and goes
    }

    // Moves time on and lets the store act on its deadlines, as its timer would.
    void advance(std::chrono::seconds by) {
        if (by.count() == 0) return;
        now_ += by;
        boost::asio::post(ioc_, [this] {
            if (store_) store_->run_due_deadlines();
        });
        poll_until([] { return false; }, nullptr);
        check_hangups(false);
    }

    // The bytes of one or more connections.  Each connection's requests are read as http_session
    // reads them; after a request that closes its connection (Connection: close, HTTP/1.0, an
    // answer with close) or hands it over (the live channel), the bytes that follow are the next
    // connection's.  A request that cannot be read ends the input (where would the next start?).
    std::vector<exchange_record> connections(std::string_view bytes, int max_requests = 64) {
        std::vector<exchange_record> out;
        const auto& limits = settings_.limits;
        constexpr std::size_t framing_allowance = 16 * 1024;  // as http_session
        for (int n = 0; !bytes.empty() && n < max_requests; ++n) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
            parser.body_limit(limits.max_body_bytes);
            parser.eager(true);
            error_code ec;
            std::size_t used_total = 0;
            std::optional<http_response> refused;
            while (!bytes.empty() && !parser.is_done()) {
                const auto used = parser.put(net::buffer(bytes.data(), bytes.size()), ec);
                bytes.remove_prefix(used);
                used_total += used;
                if (ec == http::error::need_more) {
                    ec = {};
                    break;
                }
                if (ec) break;
                if (parser.is_header_done() && !refused) {
                    if (const auto problem = framing_problem(head_facts(parser))) {
                        refused = router::read_failure_answer(read_failure::malformed, *problem);
                        break;
                    }
                }
            }
            if (!refused && ec) refused = router::read_failure_answer(classify(ec));
            const auto held = used_total + bytes.size();
            if (!refused && !parser.is_header_done() && held > limits.max_header_bytes) {
                refused = router::read_failure_answer(read_failure::headers_too_large);
            }
            if (!refused && held > limits.max_header_bytes + limits.max_body_bytes + framing_allowance) {
                refused = router::read_failure_answer(read_failure::body_too_large);
            }
            if (refused) {
                http_request none;
                none.method = "-";
                none.target = "-";
                check_answer(none, *refused, false);
                FUZZ_CHECK(refused->status == 400 || refused->status == 413 || refused->status == 431, refused->body);
                out.push_back({std::move(none), std::move(*refused), false});
                break;  // the connection closes after the answer
            }
            if (!parser.is_done()) break;  // the input ended mid-request: the connection would wait

            auto& msg = parser.get();
            auto req = to_plain_request(msg);
            req.peer_address = "127.0.0.1";
            const auto step = requested_advance(req);
            auto ex = handle(std::move(req));
            // After a request that closes or hands over its connection (!keep_alive || ex.second),
            // what follows is the next connection's: read on either way.
            out.push_back(std::move(ex.first));
            advance(step);
        }
        return out;
    }

    // One request, already read: the router's decision carried out.  Returns the answer (none
    // for a live channel) and whether the connection would close.
    std::pair<exchange_record, bool> handle(http_request req) {
        const auto decision = routes_->route(req);
        exchange_record ex;
        switch (decision.what) {
        case route_decision::kind::respond: {
            ex.res = decision.response;
            if (decision.head_only) ex.res.omit_body = true;
            check_answer(req, ex.res, false);
            ex.req = std::move(req);
            return {std::move(ex), decision.close};
        }
        case route_decision::kind::session_api: {
            FUZZ_CHECK(req.path == "/api/session" && !req.websocket_upgrade, describe(req));
            const auto before = snapshot();
            int answers = 0;
            service_->handle(req, responder([&](http_response res) {
                ++answers;
                ex.res = std::move(res);
            }));
            poll_until([&] { return answers > 0; }, "the service never answered");
            poll_until([] { return false; }, nullptr);
            FUZZ_CHECK(answers == 1, describe(req));
            if (decision.head_only) ex.res.omit_body = true;
            check_answer(req, ex.res, true);
            check_upstream(req, ex.res, before);
            ex.req = std::move(req);
            ex.from_service = true;
            return {std::move(ex), false};
        }
        case route_decision::kind::live_channel: {
            FUZZ_CHECK(req.websocket_upgrade && req.path == live_channel_path, describe(req));
            FUZZ_CHECK(find_ticket(req, ticket_sources::live_channel) == decision.ticket, describe(req));
            auto channel = std::make_shared<recording_channel>(decision.ticket);
            service_->open_channel(decision.ticket, channel);
            poll_until([] { return false; }, nullptr);
            channels_.push_back(channel);
            check_pushes(*channel);
            ex.req = std::move(req);
            ex.res.status = 101;
            return {std::move(ex), true};
        }
        }
        violated("unknown decision");
    }

    // POST /api/session?action=... as a connection would read it.
    http_response post(std::string_view action, std::vector<std::pair<std::string, std::string>> headers = {},
                       std::string body = {}) {
        std::string bytes = "POST /api/session?action=" + std::string(action) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        for (const auto& [name, value] : headers) bytes += name + ": " + value + "\r\n";
        bytes += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        auto answers = connections(bytes, 1);
        FUZZ_CHECK(answers.size() == 1, bytes);
        return std::move(answers.front().res);
    }

    // ---- properties ------------------------------------------------------------------------------

    void check_answer(const http_request& req, const http_response& res, bool from_service) {
        const auto where = describe(req) + "\n-> " + std::to_string(res.status) + " " + std::string(res.body_view().substr(0, 400));
        static const std::set<unsigned> known{101, 200, 201, 304, 400, 401, 403, 404, 405, 409, 413, 415, 426, 429, 431, 503};
        FUZZ_CHECK(known.count(res.status) == 1, where);
        const auto body = res.body_view();
        std::string head = res.prepared_head ? *res.prepared_head : std::string();
        for (const auto& [name, value] : res.headers) {
            FUZZ_CHECK(name.find_first_of("\r\n:") == std::string::npos && value.find_first_of("\r\n") == std::string::npos,
                       where + "\n" + name + ": " + value);
            head += name + ": " + value + "\r\n";
        }
        for (const auto& secret : {admin_token, openai_key}) {
            FUZZ_CHECK(!contains(body, secret) && !contains(head, secret), where);
        }
        // Tickets: only the requester's own, or the one this very join issued; none in stats.
        const auto own = find_ticket(req, ticket_sources::api);
        const bool stats = req.query_param("action") == "stats";
        for (std::size_t i = 0; i < issued_.size(); ++i) {
            const auto& t = issued_[i];
            if (!contains(body, t) && !contains(head, t)) continue;
            FUZZ_CHECK(!stats, "a ticket in a stats answer\n" + where);
            const bool mine = own == t || (from_service && i + 1 == issued_.size() && req.query_param("action") == "join");
            FUZZ_CHECK(mine, "another visitor's ticket " + t + " in the answer\n" + where);
        }
        if (!res.header("Set-Cookie").empty()) {
            const auto action = req.query_param("action");
            FUZZ_CHECK(from_service && (action == "join" || action == "leave"), where);
        }
        if (res.status == 405) FUZZ_CHECK(!res.header("Allow").empty(), where);
        if (res.status >= 400) {
            FUZZ_CHECK(res.header("Content-Type") == "application/json", where);
            const auto doc = nlohmann::json::parse(body, nullptr, false);
            FUZZ_CHECK(doc.is_object() && doc.size() == 1 && doc.contains("error") && doc["error"].is_object() &&
                           doc["error"].contains("code") && doc["error"]["code"].is_string() &&
                           !doc["error"]["code"].get<std::string>().empty() && doc["error"].contains("message") &&
                           doc["error"]["message"].is_string() && !doc["error"]["message"].get<std::string>().empty(),
                       where);
            if (doc["error"]["code"] == "too_many_joins") FUZZ_CHECK(!res.header("Retry-After").empty(), where);
        } else if (from_service && res.status == 200) {
            const auto doc = nlohmann::json::parse(body, nullptr, false);
            FUZZ_CHECK(doc.is_object(), where);
        }
    }

    void check_pushes(const recording_channel& c) {
        for (const auto& p : c.pushes) {
            const auto doc = nlohmann::json::parse(p, nullptr, false);
            FUZZ_CHECK(doc.is_object() && doc.contains("type") && doc["type"].is_string(), p);
            FUZZ_CHECK(!contains(p, admin_token) && !contains(p, openai_key), p);
            for (const auto& t : issued_) FUZZ_CHECK(t == c.ticket || !contains(p, t), "another visitor's ticket in a push to " + c.ticket + ": " + p);
        }
    }

    void check_logs() {
        for (const auto& line : log_->lines) {
            FUZZ_CHECK(!contains(line, admin_token) && !contains(line, openai_key), line);
            for (const auto& t : issued_) FUZZ_CHECK(!contains(line, t), "a ticket in a log line: " + line);
        }
        log_->lines.clear();
    }

private:
    using request_message = http::request<http::string_body>;

    struct upstream_counts {
        std::size_t mints = 0, offers = 0;
    };
    upstream_counts snapshot() const { return {upstream_->minted_ttls.size(), upstream_->offers.size()}; }

    // As http_session.cpp (private there).
    static http_request to_plain_request(request_message& msg) {
        http_request req;
        req.method.assign(msg.method_string());
        req.target.assign(origin_form(msg.target()));
        const auto q = req.target.find('?');
        req.path = req.target.substr(0, q);
        if (q != std::string::npos) req.query = req.target.substr(q + 1);
        for (const auto& field : msg) req.headers.emplace_back(lower_ascii(field.name_string()), std::string(field.value()));
        req.websocket_upgrade = beast::websocket::is_upgrade(msg);
        req.body = std::move(msg.body());
        return req;
    }
    static read_failure classify(const error_code& ec) {
        if (ec == http::error::body_limit) return read_failure::body_too_large;
        if (ec == http::error::header_limit) return read_failure::headers_too_large;
        return read_failure::malformed;
    }

    static std::chrono::seconds requested_advance(const http_request& req) {
        const auto v = req.header(advance_header);
        if (v.empty() || v.size() > 4 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return std::chrono::seconds{1};
        }
        return std::chrono::seconds{std::min(3600, std::stoi(std::string(v)))};
    }

    template <class Done>
    void poll_until(Done done, const char* what) {
        for (int i = 0; i < 1000 && !done(); ++i) {
            ioc_.restart();
            if (ioc_.poll() == 0 && !done()) break;
        }
        if (what != nullptr && !done()) violated(what);
    }

    // Upstream work happened only where due; a recorded call is remembered for the hang-ups.
    void check_upstream(const http_request& req, const http_response& res, const upstream_counts& before) {
        const auto where = describe(req) + "\n-> " + std::to_string(res.status) + " " + res.body;
        const auto action = req.query_param("action");
        const auto own = find_ticket(req, ticket_sources::api);
        const auto minted = upstream_->minted_ttls.size() - before.mints;
        const auto relayed = upstream_->offers.size() - before.offers;
        FUZZ_CHECK(minted <= 1 && relayed <= 1 && minted + relayed <= 1, where);
        if (minted == 1) {
            FUZZ_CHECK(action == "token" && req.method == "POST" && own && res.status == 200, where);
            const auto ttl = upstream_->minted_ttls.back();
            FUZZ_CHECK(ttl >= std::chrono::seconds{10} && ttl <= std::chrono::seconds{7200}, where);
            FUZZ_CHECK(++mints_[*own] <= max_tokens_per_session, "more keys than a session may have\n" + where);
        }
        if (relayed == 1) {
            FUZZ_CHECK(action == "connect" && req.method == "POST" && own && res.status == 201, where);
            FUZZ_CHECK(upstream_->offers.back() == req.body && req.body.rfind("v=0", 0) == 0, where);
            FUZZ_CHECK(++mints_[*own] <= max_tokens_per_session, "more relays than a session may have\n" + where);
            recorded_.insert({*own, "rtc_relayed_" + std::to_string(upstream_->offers.size())});
        }
        if (action == "call" && res.status == 200) {
            FUZZ_CHECK(own.has_value(), where);
            const auto body = nlohmann::json::parse(req.body, nullptr, false);
            FUZZ_CHECK(body.is_object() && body.contains("callId") && body["callId"].is_string(), where);
            recorded_.insert({*own, body["callId"].get<std::string>()});
        }
        check_hangups(false);
    }

    // Every hang-up is of a recorded call, no call more often than it was recorded (by distinct
    // sessions); at the end (`all`), every recorded call exactly once.
    void check_hangups(bool all) {
        std::map<std::string, int> recorded, hung;
        for (const auto& [ticket, call] : recorded_) ++recorded[call];
        for (const auto& call : upstream_->hangups) ++hung[call];
        for (const auto& [call, n] : hung) {
            const auto it = recorded.find(call);
            FUZZ_CHECK(it != recorded.end() && n <= it->second, "hung up a call " + std::to_string(n) + " time(s): " + call);
        }
        if (all) FUZZ_CHECK(hung == recorded, "a recorded call was not hung up at shutdown");
    }

    config settings_;
    routing_settings routing_;
    scratch_dir dir_;
    std::shared_ptr<const static_files> files_;
    std::shared_ptr<capturing_sink> log_;
    boost::asio::io_context ioc_;
    metrics counters_;
    const steady_time start_ = steady_time{} + std::chrono::hours{100000};  // timers never fire by themselves
    steady_time now_ = start_;
    std::shared_ptr<recording_upstream> upstream_ = std::make_shared<recording_upstream>();
    std::shared_ptr<session_service> service_;
    memory_store* store_ = nullptr;
    std::optional<router> routes_;
    std::vector<std::string> issued_;
    std::vector<std::shared_ptr<recording_channel>> channels_;
    std::set<std::pair<std::string, std::string>> recorded_;  // (ticket, call id) recorded
    std::map<std::string, int> mints_;                        // keys (or relays) per ticket
};

}  // namespace voice_broker::fuzzing
