// The Redis store's randomized model test: three store clients (as three instances would hold
// them) share one real redis-server and take turns, sometimes at once, through at least 100,000
// operations while Redis's clock (the script's TIME plus the test-only offset key) moves by hand.
// A crash of one client is part of the run.  Every batch the scripts publish is recorded by the
// test's own subscriber, and the properties are checked on that record and on Redis itself:
//   - never more than N holders;
//   - FIFO: admissions happen in join order;
//   - no entry lost: every entry that joined ends exactly once (the run ends by letting time pass);
//   - each warning once;
//   - every call of an ended session is hung up once (handed to exactly one client, or, when the
//     client that had it crashed, taken over by a survivor), never before its session ended.
// MODEL_TEST_SEED and MODEL_TEST_OPS override the defaults.
#include "redis_store.hpp"
#include "redis_test_loop.hpp"
#include "redis_test_server.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/redis_subscriber.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <random>
#include <set>

namespace voice_broker::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr std::size_t slots = 2;

session_limits model_limits() {
    session_limits l;
    l.max_concurrent_users = slots;
    l.max_queue_length = 30;
    l.session_duration = 20s;
    l.warnings = {10s, 5s};
    l.heartbeat_timeout = 30s;
    l.admission_grace = 4s;
    return l;
}

// What one client's "service" sees.
struct recording_listener final : store_listener {
    std::vector<std::string> handed_over;
    void on_events(const std::vector<broker_event>&, steady_time, bool) override {}
    void on_hang_ups(std::vector<std::string> calls) override {
        for (auto& c : calls) handed_over.push_back(std::move(c));
    }
    void on_resync() override {}
};

struct client {
    std::string instance;
    std::unique_ptr<session_store> store;
    recording_listener listener;
    std::vector<std::string> tickets;          // joined through this client
    std::map<std::uint64_t, int> channels;     // open channels by entry id
    std::set<std::string> likely_active;       // tickets last seen holding a slot
    std::size_t reported = 0;                  // handed_over entries reported done
    bool silent = false;                       // about to crash: reports nothing more
};

class redis_store_model : public ::testing::Test {
protected:
    redis_test_server redis;
    redis_test_loop loop;
    metrics counters;
    std::mt19937_64 rng;
    std::vector<std::unique_ptr<client>> clients;
    int next_instance = 0;
    std::vector<json> batches;
    std::set<std::string> recorded_calls;            // accepted by record_call
    std::map<std::string, int> hung_up;              // call -> times reported done
    std::map<std::string, std::uint64_t> call_owner; // call -> entry id
    std::uint64_t next_ticket = 0;
    std::size_t ops = 0;

    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

    std::unique_ptr<client> make_client() {
        auto c = std::make_unique<client>();
        c->instance = "model-" + std::to_string(++next_instance);
        redis_store_options options;
        options.settings.redis_url = url_text();
        options.settings.key_prefix = "model";
        options.settings.instance_id = c->instance;
        options.touch_period = 500ms;
        c->store = make_redis_store(loop.executor(), model_limits(), [] { return std::chrono::steady_clock::now(); },
                                    options, counters);
        c->store->set_listener(&c->listener);
        return c;
    }

    std::string url_text() const { return "redis://127.0.0.1:" + std::to_string(redis.port()) + "/0"; }

    void move_clock(int ms) { redis.command({"INCRBY", "{model}:clock", std::to_string(ms)}); }

    template <class Op>
    void run(Op&& op) {
        bool done = false;
        op(done);
        ASSERT_TRUE(loop.run_until([&] { return done; }, 5s)) << "a store operation never answered";
        ++ops;
    }

    // What a status says about who holds a slot, so that keys and calls go to likely holders.
    static void note(client& c, const std::string& ticket, const std::optional<entry_status>& s) {
        if (s && s->state == entry_state::active) c.likely_active.insert(ticket);
        else c.likely_active.erase(ticket);
    }

    void report_hang_ups(client& c) {
        if (c.silent) return;
        for (; c.reported < c.listener.handed_over.size(); ++c.reported) {
            const auto& call = c.listener.handed_over[c.reported];
            ++hung_up[call];
            c.store->hang_up_done(call);
        }
    }

    // One random operation by one random client.
    void step() {
        auto& c = *clients[static_cast<std::size_t>(pick(0, static_cast<int>(clients.size()) - 1))];
        const int roll = pick(0, 99);
        const auto any_ticket = [&]() -> std::string {
            if (c.tickets.empty() || pick(0, 9) == 0) return "unknown-" + std::to_string(pick(0, 3));
            // Mostly the recent visitors, who may still be there; now and then an old one.
            const int n = static_cast<int>(c.tickets.size());
            const int from = pick(0, 19) == 0 ? 0 : std::max(0, n - 30);
            return c.tickets[static_cast<std::size_t>(pick(from, n - 1))];
        };
        if (roll < 25) {
            run([&](bool& done) {
                join_request r{"model-t" + std::to_string(++next_ticket), std::nullopt, "203.0.113.1"};
                if (pick(0, 9) == 0 && !c.tickets.empty()) r.existing_ticket = any_ticket();
                c.store->join(r, [&, fresh = r.fresh_ticket](store_error e, join_outcome o) {
                    if (e == store_error::none && o.what == join_outcome::kind::joined) c.tickets.push_back(fresh);
                    done = true;
                });
            });
        } else if (roll < 35) {
            const auto t = any_ticket();
            run([&](bool& done) {
                c.store->heartbeat(t, [&, t](store_error, std::optional<entry_status> s) {
                    note(c, t, s);
                    done = true;
                });
            });
        } else if (roll < 42) {
            run([&](bool& done) { c.store->leave(any_ticket(), [&](store_error, auto) { done = true; }); });
        } else if (roll < 52) {
            run([&](bool& done) {
                c.store->channel_opened(any_ticket(), [&](store_error e, channel_opening o) {
                    if (e == store_error::none && o.what == channel_opening::kind::opened) ++c.channels[o.status.entry_id];
                    done = true;
                });
            });
        } else if (roll < 60) {
            if (c.channels.empty()) return;
            auto it = std::next(c.channels.begin(), pick(0, static_cast<int>(c.channels.size()) - 1));
            c.store->channel_closed(it->first);
            if (--it->second == 0) c.channels.erase(it);
        } else if (roll < 72) {
            auto t = any_ticket();
            if (!c.likely_active.empty() && pick(0, 3) != 0) {
                t = *std::next(c.likely_active.begin(), pick(0, static_cast<int>(c.likely_active.size()) - 1));
            }
            run([&](bool& done) {
                c.store->reserve_token(t, 3, [&, t](store_error e, token_reservation r) {
                    if (r.what != token_reservation::kind::reserved) c.likely_active.erase(t);
                    if (e != store_error::none || r.what != token_reservation::kind::reserved) {
                        done = true;
                        return;
                    }
                    const auto call = "rtc_model_" + std::to_string(ops);
                    c.store->record_call(r.status.entry_id, call, [&, call, id = r.status.entry_id](store_error e2, call_recording rec) {
                        if (e2 == store_error::none && rec == call_recording::recorded) {
                            recorded_calls.insert(call);
                            call_owner[call] = id;
                        }
                        done = true;
                    });
                });
            });
        } else if (roll < 73 && pick(0, 9) == 0) {
            run([&](bool& done) { c.store->force_end_all([&](store_error, std::size_t) { done = true; }); });
        } else {
            move_clock(pick(0, 600));
            const auto t = any_ticket();
            run([&](bool& done) {
                c.store->status(t, [&, t](store_error, std::optional<entry_status> s) {
                    note(c, t, s);
                    done = true;
                });
            });
        }
    }

    std::int64_t zcard(const std::string& key) { return redis.command({"ZCARD", "{model}:" + key}).integer; }
};

// An active session's status names the last warning whose instant has passed by Redis's clock, the
// same on every instance, whether asked by status or by a live channel that opens (docs/API.md,
// lastWarningSeconds): a page that missed the push while it reconnected is told again.
TEST_F(redis_store_model, a_status_names_the_last_warning_that_fired_the_same_on_every_instance) {
    for (int i = 0; i < 2; ++i) clients.push_back(make_client());
    ASSERT_TRUE(loop.run_until([&] { return clients[0]->store->available() && clients[1]->store->available(); }, 5s));
    std::optional<join_outcome> joined;
    run([&](bool& done) {
        clients[0]->store->join({"model-warned", std::nullopt, "203.0.113.1"}, [&](store_error e, join_outcome o) {
            if (e == store_error::none) joined = o;
            done = true;
        });
    });
    ASSERT_TRUE(joined);
    ASSERT_EQ(joined->status.state, entry_state::active);  // 20 s, warnings at 10 and 5 s left
    const auto status_on = [&](client& c) {
        std::optional<entry_status> out;
        run([&](bool& done) {
            c.store->status("model-warned", [&](store_error, std::optional<entry_status> s) {
                out = std::move(s);
                done = true;
            });
        });
        return out.value_or(entry_status{});
    };
    const auto opened_on = [&](client& c) {
        channel_opening out;
        run([&](bool& done) {
            c.store->channel_opened("model-warned", [&](store_error, channel_opening o) {
                out = std::move(o);
                done = true;
            });
        });
        c.store->channel_closed(out.status.entry_id);
        return out.status;
    };
    EXPECT_EQ(joined->status.last_warning, 0s);
    move_clock(9'500);  // half a second before the first warning
    EXPECT_EQ(status_on(*clients[1]).last_warning, 0s);
    EXPECT_EQ(opened_on(*clients[1]).last_warning, 0s);
    move_clock(1'000);
    for (auto& c : clients) {
        EXPECT_EQ(status_on(*c).last_warning, 10s) << c->instance;
        const auto opened = opened_on(*c);
        EXPECT_EQ(opened.state, entry_state::active);
        EXPECT_EQ(opened.last_warning, 10s) << c->instance;
    }
    move_clock(5'000);
    for (auto& c : clients) EXPECT_EQ(opened_on(*c).last_warning, 5s) << c->instance;
}

TEST_F(redis_store_model, a_hundred_thousand_interleaved_operations_keep_every_property) {
    const auto seed = std::getenv("MODEL_TEST_SEED") ? std::stoull(std::getenv("MODEL_TEST_SEED")) : 20261201ULL;
    const auto target = std::getenv("MODEL_TEST_OPS") ? std::stoull(std::getenv("MODEL_TEST_OPS")) : 100000ULL;
    rng.seed(seed);
    std::cout << "redis model test: MODEL_TEST_SEED=" << seed << " MODEL_TEST_OPS=" << target << "\n";

    redis_client_options watch;
    watch.url = redis.url();
    auto recorder = redis_subscriber::create(loop.executor(), watch);
    recorder->on_message([this](const redis_message& m) { batches.push_back(json::parse(m.payload)); });
    bool subscribed = false;
    recorder->on_resync([&subscribed] { subscribed = true; });
    recorder->subscribe("{model}:events");
    recorder->start();
    ASSERT_TRUE(loop.run_until([&] { return subscribed; }, 5s));

    for (int i = 0; i < 3; ++i) clients.push_back(make_client());
    ASSERT_TRUE(loop.run_until([&] { return std::all_of(clients.begin(), clients.end(), [](auto& c) { return c->store->available(); }); }, 5s));

    bool crashed = false;
    std::set<std::string> crash_held;  // handed to the crashed client and never reported
    while (ops < target) {
        step();
        if (HasFatalFailure()) return;
        loop.drain();
        for (auto& c : clients) report_hang_ups(*c);
        ASSERT_LE(zcard("a"), static_cast<std::int64_t>(slots)) << "more holders than slots after " << ops << " operations";
        if (!crashed && ops >= target / 2 - 2000) clients[0]->silent = true;  // hang-ups it gets are never reported
        // The crash comes once the silent client holds a hang-up it will never report (how soon
        // one is handed to it is up to the random operations and the timing), at the latest at
        // three quarters of the run.
        const bool victim_holds = clients[0]->reported < clients[0]->listener.handed_over.size();
        if (!crashed && ops >= target / 2 && (victim_holds || ops >= target * 3 / 4)) {
            // One instance dies (kill -9): it reports nothing more, its channels and claims lapse.
            crashed = true;
            auto& victim = *clients[0];
            for (auto i = victim.reported; i < victim.listener.handed_over.size(); ++i) crash_held.insert(victim.listener.handed_over[i]);
            EXPECT_FALSE(crash_held.empty()) << "the crash should leave hang-ups to take over";
            victim.store.reset();
            clients[0] = make_client();
        }
    }

    // Let time pass until everything has ended; the survivors take over what the dead one held.
    // (Each client's tick runs the deadlines and takes over lapsed claims on its own.)
    const auto all_settled = [&] { return zcard("a") == 0 && zcard("q") == 0 && zcard("h") == 0; };
    for (int round = 0; round < 60 && !all_settled(); ++round) {
        move_clock(5000);
        loop.run_until([&] {
            for (auto& c : clients) report_hang_ups(*c);
            return all_settled();
        }, 1500ms);
    }
    ASSERT_TRUE(loop.run_until([&] { return !batches.empty() && batches.back()["s"].get<std::uint64_t>() ==
                                                std::stoull(redis.command({"GET", "{model}:ev"}).text); }, 5s))
        << "the recorder missed batches";
    EXPECT_EQ(zcard("a"), 0);
    EXPECT_EQ(zcard("q"), 0);
    EXPECT_EQ(zcard("h"), 0) << "hang-ups left unclaimed or unreported";

    // ---- the properties, on the record of every batch ----
    // Batch numbers start at Redis's clock (a lost data set never reuses them), then grow by one.
    ASSERT_FALSE(batches.empty());
    std::uint64_t last_seq = batches.front()["s"].get<std::uint64_t>() - 1, last_admitted = 0;
    std::size_t holders = 0, admissions = 0, warnings = 0;
    std::set<std::uint64_t> joined, ended, active;
    std::set<std::pair<std::uint64_t, int>> warned;
    for (const auto& b : batches) {
        ASSERT_EQ(b["s"].get<std::uint64_t>(), last_seq + 1) << "batches are numbered without gaps";
        last_seq = b["s"];
        for (const auto& ev : b["ev"]) {
            const auto kind = ev["k"].get<std::string>();
            const auto id = ev.value("id", std::uint64_t{0});
            if (kind == "q+") {
                ASSERT_TRUE(joined.insert(id).second) << id << " queued twice";
            } else if (kind == "adm") {
                joined.insert(id);
                ASSERT_GT(id, last_admitted) << "FIFO broken: " << id << " admitted after " << last_admitted;
                last_admitted = id;
                ASSERT_TRUE(active.insert(id).second);
                ASSERT_LE(++holders, slots) << "more than " << slots << " holders at batch " << last_seq;
                ++admissions;
            } else if (kind == "warn") {
                ASSERT_TRUE(active.count(id)) << "a warning for " << id << " who does not hold a slot";
                ASSERT_TRUE(warned.insert({id, ev["left"].get<int>()}).second) << "warning " << ev["left"] << " twice for " << id;
                ++warnings;
            } else if (kind == "end") {
                ASSERT_TRUE(joined.count(id)) << id << " ended without having joined";
                ASSERT_TRUE(ended.insert(id).second) << id << " ended twice";
                if (ev["wa"] == 1) {
                    ASSERT_TRUE(active.erase(id));
                    --holders;
                }
            }
        }
    }
    EXPECT_EQ(joined, ended) << "an entry was lost";
    for (const auto& call : recorded_calls) {
        EXPECT_EQ(hung_up[call], 1) << call << " hung up " << hung_up[call] << " times";
        EXPECT_TRUE(ended.count(call_owner[call])) << call << " belongs to a session that never ended";
    }
    for (const auto& [call, n] : hung_up) EXPECT_TRUE(recorded_calls.count(call)) << call << " was never recorded";
    std::size_t taken_over = 0;
    for (const auto& call : crash_held) taken_over += hung_up[call] == 1;
    std::cout << "redis model test: " << ops << " operations, " << joined.size() << " entries, " << admissions
              << " admissions, " << warnings << " warnings, " << recorded_calls.size() << " calls hung up ("
              << crash_held.size() << " held by the crashed client, " << taken_over << " taken over), " << batches.size()
              << " batches\n";
    EXPECT_GT(admissions, ops / 200) << "the run exercised too little";
    EXPECT_GT(warnings, ops / 2000);
    EXPECT_EQ(taken_over, crash_held.size());
}

}  // namespace
}  // namespace voice_broker::testing
