// Fuzzes what the Redis store reads from Redis, without a live Redis: the script's replies (JSON
// in a bulk string, or any RESP reply, read by hiredis and turned into redis_reply) and the
// event batches published on "{vb}:events".  The fuzzer plays Redis: a fake server in-process
// (loopback, port 0, the same io_context) answers the handshake as Redis does (CLIENT SETNAME
// +OK, PING +PONG, SUBSCRIBE confirmations, SCRIPT LOAD, WAIT, ZREM), and answers each
// EVALSHA with the next reply the input queued (none queued: {"now":...}, what a script that
// found nothing says).  The real session service runs over the real Redis store (make_redis_store)
// with a hand-moved clock and a recording upstream, polled on the io_context; exceptions that
// escape a handler are caught as the server's I/O threads catch them.
//
// Input: one step per line.
//   R <text>   queue a script reply: <text> as a bulk string (the script's JSON)
//   E <text>   queue a script reply: the error -<text> (NOSCRIPT, BUSY, OOM, READONLY...)
//   W <resp>   queue a raw RESP reply ("\n" written as the two characters backslash, n, is CRLF);
//              replaced by -ERR when it is not exactly one complete reply
//   M <text>   publish <text> as an event batch
//   A <action> [<n>]  an API request (join, status, heartbeat, leave, token, call, stats,
//              forceEndAll) with ticket tk<n>_fuzzticket000000 in X-Session-Ticket
//   O <n>      open a live channel for ticket n;  C <n>  close it
//   T <s>      move the clock on by s seconds
// The store connects before the first step that is not R, E or W: what is queued before is
// answered to its first operations (touch, advance, snapshot, touch, advance); each queued
// reply goes to the next operation (none queued: the script's answer when it finds nothing).
// Properties: nothing crashes (ASan, UBSan) or hangs; every API request is answered exactly once,
// within 2 s; every answer has a known status and, for an error, the JSON error shape; neither
// the admin token nor the OpenAI key in any answer, push or log line; no exception escapes a
// handler.  Finding redis-reply-shape (fixed; tests/fuzz/findings/README.md): a reply or batch
// that is the script's JSON in form but not in content (a field missing or of another type, a
// time centuries away) was undefined behaviour or an exception; the store now reads both through
// redis_store_reader.  With VB_FUZZ_KNOWN=redis-reply-shape the fake Redis still keeps to the
// script's contract (script_contract below: such a reply becomes -ERR, such a batch is not
// published), for bisecting.
#include "session_api_harness.hpp"

#include "redis_store.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstdlib>
#include <deque>

using namespace voice_broker;
using namespace voice_broker::fuzzing;
namespace asio = boost::asio;

namespace {

std::string bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }

// True when `resp` is exactly one complete RESP reply, as hiredis reads it.
bool one_complete_reply(const std::string& resp) {
    redisReader* reader = redisReaderCreate();
    void* reply = nullptr;
    bool ok = redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK && redisReaderGetReply(reader, &reply) == REDIS_OK &&
              reply != nullptr && reader->pos == reader->len;
    if (reply != nullptr) freeReplyObject(reply);
    redisReaderFree(reader);
    return ok;
}

// ---- the script's contract -------------------------------------------------------------------
// What redis_store.lua can answer (and publish), as far as redis_store.cpp reads it: every field
// it reads present with its type, every time within 50 years of Redis's clock, positions and
// counts of a believable size.  A reply outside it was the finding redis-reply-shape (see the
// header comment); VB_FUZZ_KNOWN=redis-reply-shape sends -ERR instead (and drops such a batch).
class script_contract {
public:
    // `queued_floor`: the highest id queued so far (ids come from INCR: a new one is larger).
    script_contract(std::int64_t redis_now_ms, std::uint64_t& queued_floor) : now_(redis_now_ms), floor_(queued_floor) {}

    bool reply(const std::string& op, const nlohmann::json& r) const {
        if (!r.is_object() || !time(r, "now", true) || !deadline(r, "nd") || !strings(r, "hang", false)) return false;
        if (r.contains("more") && !r["more"].is_boolean()) return false;
        if (r.contains("what") && !r["what"].is_string()) return false;
        const auto what = r.value("what", std::string());
        if (op == "join") return what == "full" || status(r, "status");
        if (op == "status" || op == "heartbeat" || op == "leave") return !r.contains("status") || status(r, "status");
        if (op == "reserve_token") return what != "reserved" || status(r, "status");
        if (op == "channel_open") return what == "unknown" || (r.contains("what") && status(r, "status"));
        if (op == "force_end_all") return !r.contains("ended") || count(r["ended"]);
        if (op == "statuses") {
            if (!r.contains("statuses") || !r["statuses"].is_array()) return false;
            for (const auto& st : r["statuses"]) {
                if (!status_doc(st)) return false;
            }
            return true;
        }
        if (op == "stats") {
            if (!pairs(r, "active") || !times(r, "starts") || !r.contains("queued") || !count(r["queued"])) return false;
            if (!r.contains("today") || !r["today"].is_array() || !strings(r, "instances", true)) return false;
            for (const auto& n : r["today"]) {
                if (!count(n)) return false;
            }
            return true;
        }
        if (op == "snapshot") {
            if (!pairs(r, "active") || !times(r, "starts") || !r.contains("queue") || !r["queue"].is_array()) return false;
            if (r.contains("seq") && !count(r["seq"])) return false;
            std::set<std::uint64_t> ids;
            for (const auto& id : r["queue"]) {
                if (!id_text(id) || !ids.insert(std::stoull(id.get<std::string>())).second) return false;  // ZRANGE: each once
            }
            if (!ids.empty()) floor_ = std::max(floor_, *ids.rbegin());
            return true;
        }
        return true;
    }

    bool batch(const nlohmann::json& b) const {
        if (!b.is_object() || !b.contains("s") || !count(b["s"]) || !time(b, "t", true) || !deadline(b, "nd")) return false;
        if ((b.contains("by") && !b["by"].is_string()) || (b.contains("qc") && !small(b["qc"]))) return false;
        if (!b.contains("ev") || !b["ev"].is_array()) return false;
        auto floor = floor_;
        for (const auto& ev : b["ev"]) {
            if (!ev.is_object() || !ev.contains("k") || !ev["k"].is_string() || !ev.contains("id") || !count_id(ev["id"])) return false;
            const auto k = ev["k"].get<std::string>();
            if (k == "q+") {  // a new entry: its id is above every id queued before
                if (ev["id"].get<std::uint64_t>() <= floor) return false;
                floor = ev["id"].get<std::uint64_t>();
            }
            if (k == "adm" && !(time(ev, "s", false) && time(ev, "x", false) && time(ev, "j", false) && (!ev.contains("c") || small(ev["c"])))) return false;
            if (k == "warn" && ev.contains("left") && !small(ev["left"])) return false;
            if (k == "end" && !(text(ev, "r") && (!ev.contains("wa") || small(ev["wa"])) && time(ev, "st", false))) return false;
            if (k == "call" && !text(ev, "call")) return false;
        }
        floor_ = floor;
        return true;
    }

private:
    static constexpr std::int64_t fifty_years_ms = 50LL * 366 * 24 * 3600 * 1000;

    static bool small(const nlohmann::json& v) {
        return v.is_number_integer() && v.get<std::int64_t>() >= -1'000'000 && v.get<std::int64_t>() <= 1'000'000;
    }
    static bool count(const nlohmann::json& v) { return v.is_number_integer() && v.get<std::int64_t>() >= 0 && v.get<std::int64_t>() <= 100'000; }
    static bool text(const nlohmann::json& o, const char* key) { return !o.contains(key) || o[key].is_string(); }
    bool in_range(std::int64_t ms) const { return ms >= now_ - fifty_years_ms && ms <= now_ + fifty_years_ms; }
    bool time(const nlohmann::json& o, const char* key, bool required) const {
        if (!o.contains(key)) return !required;
        return o[key].is_number_integer() && in_range(o[key].get<std::int64_t>());
    }
    bool deadline(const nlohmann::json& o, const char* key) const {
        return !o.contains(key) || (o[key].is_number_integer() && (o[key].get<std::int64_t>() == -1 || in_range(o[key].get<std::int64_t>())));
    }
    static bool strings(const nlohmann::json& o, const char* key, bool required) {
        if (!o.contains(key)) return !required;
        if (!o[key].is_array()) return false;
        for (const auto& v : o[key]) {
            if (!v.is_string()) return false;
        }
        return true;
    }
    bool times(const nlohmann::json& o, const char* key) const {
        if (!o.contains(key) || !o[key].is_array()) return false;
        for (const auto& v : o[key]) {
            if (!v.is_number_integer() || !in_range(v.get<std::int64_t>())) return false;
        }
        return true;
    }
    static bool id_text(const nlohmann::json& v) {
        if (!v.is_string()) return false;
        const auto& t = v.get_ref<const std::string&>();
        return !t.empty() && t.size() <= 18 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
    }
    bool time_text(const nlohmann::json& v) const { return id_text(v) && in_range(std::stoll(v.get<std::string>())); }
    // ZRANGE ... WITHSCORES: id, expiry, id, expiry...
    bool pairs(const nlohmann::json& o, const char* key) const {
        if (!o.contains(key) || !o[key].is_array()) return false;
        const auto& a = o[key];
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (i % 2 == 0 ? !id_text(a[i]) : !time_text(a[i])) return false;
        }
        return true;
    }
    bool status(const nlohmann::json& o, const char* key) const { return o.contains(key) && status_doc(o[key]); }
    bool status_doc(const nlohmann::json& s) const {
        if (!s.is_object() || (s.contains("id") && !count_id(s["id"])) || !text(s, "t") || !text(s, "st") || !text(s, "r")) return false;
        if (s.contains("ql") && !count(s["ql"])) return false;
        const auto st = s.value("st", std::string("e"));
        if (st == "q") {
            if ((s.contains("pos") && !count(s["pos"])) || !s.contains("exp") || !s["exp"].is_array()) return false;
            const auto& exp = s["exp"];
            for (std::size_t i = 0; i < exp.size(); ++i) {
                if (i % 2 == 0 ? !exp[i].is_string() : !time_text(exp[i])) return false;
            }
        }
        if (st == "a") return time(s, "x", false) && time(s, "s", false) && (!s.contains("c") || small(s["c"]));
        return true;
    }
    static bool count_id(const nlohmann::json& v) { return v.is_number_unsigned(); }

    std::int64_t now_;
    std::uint64_t& floor_;
};

// A Redis as far as the store can tell.
class fake_redis {
public:
    explicit fake_redis(asio::io_context& ioc) : acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        accept();
    }

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

    std::deque<std::string> script_replies;  // RESP, for the next EVALSHA/EVAL
    std::int64_t now_ms = 0;                 // what the default reply says
    std::size_t subscriptions = 0;           // channels confirmed
    std::size_t commands = 0;

    std::vector<std::string> ops;  // the script operations asked for, in order

    // What the script answers when it finds nothing (or nothing changes), for each operation.
    std::string default_reply(const std::string& op) const {
        const auto now = std::to_string(now_ms);
        if (op == "join") return R"({"what":"full","now":)" + now + ",\"nd\":-1}";
        if (op == "reserve_token" || op == "channel_open") return R"({"what":"unknown","now":)" + now + ",\"nd\":-1}";
        if (op == "record_call") return R"({"what":"not_active","now":)" + now + ",\"nd\":-1}";
        if (op == "statuses") return R"({"statuses":[],"now":)" + now + ",\"nd\":-1}";
        if (op == "stats") return R"({"active":[],"starts":[],"queued":0,"today":[0,0,0],"instances":["fuzz-1"],"now":)" + now + ",\"nd\":-1}";
        // A consistent Redis: its event counter is at least every batch it published.
        if (op == "snapshot") return R"({"seq":)" + std::to_string(published_seq) + R"(,"queue":[],"active":[],"starts":[],"now":)" + now + ",\"nd\":-1}";
        if (op == "force_end_all") return R"({"ended":0,"now":)" + now + ",\"nd\":-1}";
        return R"({"now":)" + now + ",\"nd\":-1}";
    }

    // The text of a RESP bulk string, or nullopt for any other reply.
    static std::optional<std::string> bulk_text(const std::string& resp) {
        redisReader* reader = redisReaderCreate();
        void* reply = nullptr;
        std::optional<std::string> out;
        if (redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK && redisReaderGetReply(reader, &reply) == REDIS_OK &&
            reply != nullptr && static_cast<redisReply*>(reply)->type == REDIS_REPLY_STRING) {
            const auto* r = static_cast<redisReply*>(reply);
            out.emplace(r->str, r->len);
        }
        if (reply != nullptr) freeReplyObject(reply);
        redisReaderFree(reader);
        return out;
    }

    std::uint64_t published_seq = 0;  // the highest "s" of a batch published
    std::uint64_t queued_floor = 0;   // the highest id queued (q+ or a snapshot's queue)

    void publish(std::string_view payload) {
        const auto doc = nlohmann::json::parse(payload, nullptr, false);
        if (!doc.is_discarded() && doc.is_object() && doc.contains("s") && doc["s"].is_number_unsigned()) {
            published_seq = std::max(published_seq, doc["s"].get<std::uint64_t>());
        }
        // Not JSON, not an object, no "s": on_batch ignores it.  Anything else must keep the contract.
        const bool recognised = !doc.is_discarded() && doc.is_object() && doc.contains("s");
        if (recognised && !script_contract(now_ms, queued_floor).batch(doc) && tolerated("redis-reply-shape")) return;
        if (auto c = subscriber_.lock()) c->send("*3\r\n" + bulk("message") + bulk(events_channel_) + bulk(payload));
    }

    // Drops every connection (between inputs).
    void reset() {
        for (auto& w : connections_) {
            if (auto c = w.lock()) c->close();
        }
        connections_.clear();
        subscriber_.reset();
        script_replies.clear();
        ops.clear();
        published_seq = 0;
        queued_floor = 0;
        subscriptions = 0;
        commands = 0;
    }

private:
    struct connection : std::enable_shared_from_this<connection> {
        connection(fake_redis& server, tcp::socket s) : server(server), socket(std::move(s)) {}
        fake_redis& server;
        tcp::socket socket;
        std::string inbox, outbox, sending;
        char buf[16384];
        bool closed = false;

        void read() {
            socket.async_read_some(asio::buffer(buf), [self = shared_from_this()](error_code ec, std::size_t n) {
                if (ec || self->closed) return;
                self->inbox.append(self->buf, n);
                self->serve();
                self->read();
            });
        }
        void send(std::string bytes) {
            if (closed) return;
            outbox += bytes;
            flush();
        }
        void flush() {
            if (!sending.empty() || outbox.empty()) return;
            sending.swap(outbox);
            asio::async_write(socket, asio::buffer(sending), [self = shared_from_this()](error_code ec, std::size_t) {
                self->sending.clear();
                if (!ec) self->flush();
            });
        }
        void close() {
            closed = true;
            error_code ignored;
            socket.shutdown(tcp::socket::shutdown_both, ignored);
            socket.close(ignored);
        }
        // Commands as hiredis sends them: *N, then N bulk strings.
        void serve() {
            for (;;) {
                std::vector<std::string> args;
                std::size_t at = 0;
                if (!parse(args, at)) return;
                inbox.erase(0, at);
                ++server.commands;
                server.answer(*this, args);
            }
        }
        bool parse(std::vector<std::string>& args, std::size_t& at) const {
            auto line = [&](std::string& out) {
                const auto end = inbox.find("\r\n", at);
                if (end == std::string::npos) return false;
                out = inbox.substr(at, end - at);
                at = end + 2;
                return true;
            };
            std::string head;
            if (!line(head) || head.empty() || head[0] != '*') return false;
            const auto n = std::stoul(head.substr(1));
            for (std::size_t i = 0; i < n; ++i) {
                std::string len;
                if (!line(len) || len.empty() || len[0] != '$') return false;
                const auto l = std::stoul(len.substr(1));
                if (inbox.size() < at + l + 2) return false;
                args.push_back(inbox.substr(at, l));
                at += l + 2;
            }
            return true;
        }
    };

    void accept() {
        acceptor_.async_accept([this](error_code ec, tcp::socket s) {
            if (ec) return;
            error_code ignored;
            s.set_option(tcp::no_delay(true), ignored);  // as Redis does (else Nagle holds small replies 40 ms)
            auto c = std::make_shared<connection>(*this, std::move(s));
            connections_.push_back(c);
            c->read();
            accept();
        });
    }

    void answer(connection& c, const std::vector<std::string>& args) {
        if (args.empty()) return c.send("-ERR empty command\r\n");
        std::string name = args[0];
        for (auto& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (name == "PING") return c.send("+PONG\r\n");
        if (name == "CLIENT" || name == "SELECT" || name == "AUTH") return c.send("+OK\r\n");
        if (name == "SUBSCRIBE") {
            subscriber_ = c.shared_from_this();
            for (std::size_t i = 1; i < args.size(); ++i) {
                if (args[i].size() >= 7 && args[i].compare(args[i].size() - 7, 7, ":events") == 0) events_channel_ = args[i];
                c.send("*3\r\n" + bulk("subscribe") + bulk(args[i]) + ":" + std::to_string(i) + "\r\n");
                ++subscriptions;
            }
            return;
        }
        if (name == "SCRIPT") return c.send(bulk("0123456789abcdef0123456789abcdef01234567"));
        if (name == "EVALSHA" || name == "EVAL") {
            // EVALSHA sha numkeys key... op args...: the operation names the reply's shape.
            const auto keys = args.size() > 2 ? std::strtoul(args[2].c_str(), nullptr, 10) : 0;
            const auto op = args.size() > 3 + keys ? args[3 + keys] : std::string();
            ops.push_back(op);
            if (script_replies.empty()) return c.send(bulk(default_reply(op)));
            auto reply = std::move(script_replies.front());
            script_replies.pop_front();
            if (const auto text = bulk_text(reply)) {
                // Not JSON, not an object, no "now": the store sees that it is not the script's
                // answer (on_reply) and says unavailable.  Anything else must keep the contract.
                const auto doc = nlohmann::json::parse(*text, nullptr, false);
                const bool recognised = !doc.is_discarded() && doc.is_object() && doc.contains("now");
                if (recognised && !script_contract(now_ms, queued_floor).reply(op, doc) && tolerated("redis-reply-shape")) {
                    return c.send("-ERR fuzz: not the script's shape\r\n");
                }
            }
            return c.send(std::move(reply));
        }
        if (name == "WAIT") return c.send(":0\r\n");
        if (name == "ZREM") return c.send(":1\r\n");
        c.send("-ERR unknown command '" + args[0] + "'\r\n");
    }

    tcp::acceptor acceptor_;
    std::vector<std::weak_ptr<connection>> connections_;
    std::weak_ptr<connection> subscriber_;
    std::string events_channel_ = "{vb}:events";
};

struct world {
    asio::io_context ioc;
    fake_redis redis{ioc};
    config settings;
    metrics counters;
    std::shared_ptr<capturing_sink> log = std::make_shared<capturing_sink>();
    const steady_time start = steady_time{} + std::chrono::hours{100000};
    steady_time now = start;
    std::shared_ptr<recording_upstream> upstream;
    std::shared_ptr<session_service> service;
    std::map<int, std::pair<channel_id, std::shared_ptr<recording_channel>>> channels;
    std::vector<std::shared_ptr<recording_channel>> all_channels;

    world() {
        settings.admin_token = admin_token;
        settings.openai.api_key = openai_key;
        settings.session.max_concurrent_users = 2;
        settings.session.session_duration = std::chrono::seconds{120};
        settings.session.warnings = {std::chrono::seconds{60}};
        settings.fair_use = {0, 0, 0, 0};
        settings.store.kind = store_kind::redis;
        settings.store.redis_url = "redis://127.0.0.1:" + std::to_string(redis.port()) + "/0";
        settings.store.instance_id = "fuzz-1";
        auto logger = std::make_shared<spdlog::logger>("fuzz", log);
        logger->set_level(spdlog::level::trace);
        spdlog::set_default_logger(logger);
    }

    // Runs ready handlers; an exception leaving one is a finding (the server's run_guarded() would
    // log it and carry on, with the store's state half-changed).
    std::size_t poll_once() {
        try {
            ioc.restart();
            return ioc.poll();
        } catch (const std::exception& e) {
            violated("an exception escaped a handler", e.what());
            return 1;
        }
    }
    // Until `done`, or nothing is left to run (two empty polls; loopback delivers at once), or 2 s.
    template <class Done>
    bool run_until(Done done) {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds{2};
        int idle = 0;
        while (!done() && std::chrono::steady_clock::now() < give_up) {
            if (poll_once() == 0) {
                if (++idle >= 3) {
                    try {
                        ioc.restart();
                        ioc.run_one_for(std::chrono::milliseconds{1});
                    } catch (const std::exception& e) {
                                    violated("an exception escaped a handler", e.what());
                    }
                }
            } else {
                idle = 0;
            }
        }
        return done();
    }
    void settle() {
        int idle = 0;
        for (int i = 0; i < 2000 && idle < 3; ++i) idle = poll_once() == 0 ? idle + 1 : 0;
    }

    void begin() {
        now = start;
        redis.now_ms = 1795514400000;
        upstream = std::make_shared<recording_upstream>();
        service_options options;
        options.clock = [this] { return now; };
        options.wall_clock = wall_clock_mapping{start, std::chrono::system_clock::time_point{} + std::chrono::seconds{1795514400}};
        int issued = 0;
        options.new_ticket = [issued]() mutable { return fuzz_ticket(100 + ++issued); };
        options.make_store = [this](const asio::any_io_executor& strand, std::function<steady_time()> clock) {
            redis_store_options o;
            o.settings = settings.store;
            o.command_timeout = std::chrono::milliseconds{500};
            return make_redis_store(strand, settings.session, std::move(clock), o, counters);
        };
        service = session_service::create(ioc, settings, counters, upstream, std::move(options));
    }

    // The store connected and subscribed (what it sends first is answered from the queue).
    void started() {
        if (!run_until([this] { return redis.subscriptions >= 2; })) violated("the store never subscribed");
        settle();
    }

    void end() {
        if (std::getenv("VB_FUZZ_LOG")) {
            for (const auto& op : redis.ops) std::fprintf(stderr, "script op: %s\n", op.c_str());
        }
        bool done = false;
        service->shutdown(false, [&done] { done = true; });
        run_until([&] { return done; });
        FUZZ_CHECK(done, "shutdown never finished");
        service.reset();
        settle();
        redis.reset();
        settle();
        for (const auto& c : all_channels) check_pushes(*c);
        channels.clear();
        all_channels.clear();
        if (std::getenv("VB_FUZZ_LOG")) {  // VB_FUZZ_LOG=1 shows the store's log lines of each input
            for (const auto& line : log->lines) std::fprintf(stderr, "log: %s\n", line.c_str());
        }
        for (const auto& line : log->lines) FUZZ_CHECK(!contains(line, admin_token) && !contains(line, openai_key), line);
        log->lines.clear();
    }

    void check_pushes(const recording_channel& c) {
        for (const auto& p : c.pushes) {
            const auto doc = nlohmann::json::parse(p, nullptr, false);
            FUZZ_CHECK(doc.is_object() && doc.contains("type") && doc["type"].is_string(), p);
            FUZZ_CHECK(!contains(p, admin_token) && !contains(p, openai_key), p);
        }
    }

    void request(std::string_view action, int ticket) {
        http_request req;
        req.method = action == "status" || action == "stats" ? "GET" : "POST";
        req.path = "/api/session";
        req.query = "action=" + std::string(action);
        req.target = req.path + "?" + req.query;
        if (ticket > 0) req.headers.emplace_back("x-session-ticket", fuzz_ticket(ticket));
        if (action == "forceEndAll") req.headers.emplace_back("x-admin-token", admin_token);
        if (action == "call") req.body = R"({"callId":"rtc_fuzz"})";
        req.client_address = "203.0.113.7";
        req.request_id = "fuzz";
        const auto where = describe(req);
        int answers = 0;
        http_response res;
        service->handle(req, responder([&](http_response r) {
            ++answers;
            res = std::move(r);
        }));
        if (!run_until([&] { return answers > 0; })) violated("no answer within 2 s", where);
        settle();
        FUZZ_CHECK(answers == 1, where);
        const auto what = where + "\n-> " + std::to_string(res.status) + " " + res.body;
        static const std::set<unsigned> known{200, 201, 400, 401, 403, 404, 405, 409, 429, 503};
        FUZZ_CHECK(known.count(res.status) == 1, what);  // 500: a handler threw

        for (const auto& secret : {admin_token, openai_key}) {
            FUZZ_CHECK(!contains(res.body, secret), what);
            for (const auto& [name, value] : res.headers) FUZZ_CHECK(!contains(value, secret), what);
        }
        for (const auto& [name, value] : res.headers) FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos, what);
        const auto doc = nlohmann::json::parse(res.body, nullptr, false);
        FUZZ_CHECK(doc.is_object(), what);
        if (res.status >= 400) {
            FUZZ_CHECK(doc.size() == 1 && doc.contains("error") && doc["error"].is_object() && doc["error"].contains("code") &&
                           doc["error"]["code"].is_string() && doc["error"].contains("message") && doc["error"]["message"].is_string(),
                       what);
        }
    }
};

world& the_world() {
    static world w;
    return w;
}

int number(std::string_view s, int fallback) {
    int n = 0;
    bool any = false;
    for (char c : s) {
        if (c < '0' || c > '9' || n > 100000) break;
        n = n * 10 + (c - '0');
        any = true;
    }
    return any ? n : fallback;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    the_world();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& w = the_world();
    w.begin();
    bool started = false;
    auto ensure_started = [&] {
        if (!started) w.started();
        started = true;
    };
    int steps = 0;
    for (const auto line : split(as_text(data, size), "\n", 64)) {
        if (line.size() < 1 || ++steps > 48) continue;
        const auto arg = line.size() > 2 ? line.substr(2) : std::string_view{};
        switch (line[0]) {
        case 'R': w.redis.script_replies.push_back(bulk(arg)); break;
        case 'E': w.redis.script_replies.push_back("-" + std::string(arg.substr(0, arg.find_first_of("\r\n"))) + "\r\n"); break;
        case 'W': {
            std::string resp;
            for (std::size_t i = 0; i < arg.size(); ++i) {
                if (arg[i] == '\\' && i + 1 < arg.size() && arg[i + 1] == 'n') {
                    resp += "\r\n";
                    ++i;
                } else {
                    resp += arg[i];
                }
            }
            w.redis.script_replies.push_back(one_complete_reply(resp) ? resp : std::string("-ERR fuzz: not one reply\r\n"));
            break;
        }
        case 'M':
            ensure_started();
            w.redis.publish(arg);
            w.settle();
            break;
        case 'A': {
            ensure_started();
            const auto space = arg.find(' ');
            const auto action = arg.substr(0, space);
            static const std::set<std::string_view> actions{"join", "status", "heartbeat", "leave", "token", "call", "stats", "forceEndAll"};
            if (actions.count(action) == 0) break;
            w.request(action, space == std::string_view::npos ? 0 : number(arg.substr(space + 1), 0));
            break;
        }
        case 'O': {
            ensure_started();
            const int n = number(arg, 1);
            auto channel = std::make_shared<recording_channel>(fuzz_ticket(n));
            const auto id = w.service->open_channel(fuzz_ticket(n), channel);
            w.channels[n] = {id, channel};
            w.all_channels.push_back(channel);
            w.settle();
            break;
        }
        case 'C': {
            ensure_started();
            const auto it = w.channels.find(number(arg, 1));
            if (it == w.channels.end()) break;
            w.service->close_channel(it->second.first);
            w.channels.erase(it);
            w.settle();
            break;
        }
        case 'T': {
            ensure_started();
            const auto s = std::min(number(arg, 1), 3600);
            w.now += std::chrono::seconds{s};
            w.redis.now_ms += 1000LL * s;
            break;
        }
        default: break;
        }
    }
    ensure_started();
    w.end();
    return 0;
}
