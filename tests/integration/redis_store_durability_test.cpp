// Durable admissions and idempotent scripts, against a real redis-server (and a replica started
// by the test):
//   - a join that no replica acknowledges (the replica's link is down) answers 503 and is told to
//     nobody (no batch published, no push); the store then refuses every durable write and
//     reports itself unavailable; once the replica is back and holds the writes, the batch is
//     found on the master and published, once;
//   - a retried join with the visitor's ticket finds the same entry (never a second place), a
//     call recorded twice is one call, a leave repeated ends the session once.
#include "redis_store.hpp"
#include "redis_test_loop.hpp"
#include "redis_test_server.hpp"
#include "store_event_log.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/redis_subscriber.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace voice_broker::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

session_limits limits() {
    session_limits l;
    l.max_concurrent_users = 1;
    l.max_queue_length = 10;
    l.session_duration = 60s;
    l.heartbeat_timeout = 30s;
    l.admission_grace = 20s;
    return l;
}

using event_log = store_event_log;

class redis_store_durability : public ::testing::Test {
protected:
    std::unique_ptr<session_store> make_store(std::optional<int> wait_replicas) {
        redis_store_options options;
        options.settings.redis_url = "redis://127.0.0.1:" + std::to_string(master.port()) + "/0";
        options.settings.key_prefix = prefix;
        options.settings.instance_id = "durable";
        options.settings.wait_replicas = wait_replicas;
        options.settings.wait_timeout = 50ms;
        options.touch_period = 200ms;
        auto store = make_redis_store(loop.executor(), limits(), [] { return std::chrono::steady_clock::now(); }, options, counters);
        store->set_listener(&log);
        return store;
    }

    // Every batch published on the events channel, in order.
    void record() {
        redis_client_options options;
        options.url = master.url();
        recorder = redis_subscriber::create(loop.executor(), options);
        recorder->on_message([this](const redis_message& m) { published.push_back(json::parse(m.payload)); });
        bool subscribed = false;
        recorder->on_resync([&subscribed] { subscribed = true; });
        recorder->subscribe(key("events"));
        recorder->start();
        ASSERT_TRUE(loop.run_until([&] { return subscribed; }, 5s));
    }

    // Whatever was published before this call has arrived once the test's own marker has.
    void sync_with_recorder() {
        master.command({"PUBLISH", key("events"), R"({"marker":1})"});
        ASSERT_TRUE(loop.run_until([&] { return !published.empty() && published.back().contains("marker"); }, 5s));
        published.pop_back();
    }

    template <class T, class Op>
    std::pair<store_error, T> call(Op op) {
        std::optional<std::pair<store_error, T>> out;
        op([&](store_error e, T v) { out.emplace(e, std::move(v)); });
        EXPECT_TRUE(loop.run_until([&] { return out.has_value(); }, 5s));
        return out.value_or(std::pair{store_error::unavailable, T{}});
    }

    std::pair<store_error, join_outcome> join(session_store& s, const std::string& fresh, std::optional<std::string> existing = {}) {
        return call<join_outcome>([&](auto done) { s.join(join_request{fresh, std::move(existing), "203.0.113.5"}, done); });
    }

    std::string key(const std::string& k) const { return "{" + prefix + "}:" + k; }
    std::int64_t entries() { return static_cast<std::int64_t>(master.command({"KEYS", key("e:*")}).elements.size()); }

    std::string prefix = "durable-" + std::to_string(::getpid());
    redis_test_server master;
    redis_test_loop loop;
    metrics counters;
    event_log log;
    std::shared_ptr<redis_subscriber> recorder;
    std::vector<json> published;
};

TEST_F(redis_store_durability, an_unacknowledged_admission_is_told_to_nobody_until_a_replica_holds_it) {
    redis_server_options replica_options;
    replica_options.replica_of = master.port();
    redis_test_server replica(replica_options);
    replica.wait_for_sync(5s);
    record();
    auto store = make_store(1);
    // Up, and its mirror read once (events before that are in the mirror, not pushed).
    ASSERT_TRUE(loop.run_until([&] { return store->available() && log.resyncs > 0; }, 5s));

    // The replica's link drops, and the replica is too busy (paused) to come back for now.
    replica.pause();
    master.command({"CLIENT", "KILL", "TYPE", "replica"});
    const auto [error, outcome] = join(*store, "ticket-uncertain");
    EXPECT_EQ(error, store_error::unavailable) << "no replica acknowledged: the answer must be 503";
    const auto id = master.command({"GET", key("t:ticket-uncertain")});
    ASSERT_EQ(id.type, redis_reply_type::string) << "the write itself happened on the master; keys: "
                                                  << master.command({"KEYS", "*"}).describe();
    EXPECT_EQ(master.command({"ZCARD", key("a")}).integer, 1);
    sync_with_recorder();
    EXPECT_TRUE(published.empty()) << "a batch was published before any replica held it: " << published.front().dump();
    EXPECT_EQ(log.count(broker_event::kind::admitted), 0u) << "this instance's visitors were told";
    EXPECT_FALSE(store->available());
    EXPECT_EQ(counters.store_up.load(), 0);
    EXPECT_EQ(join(*store, "ticket-refused").first, store_error::unavailable) << "durable writes are refused meanwhile";
    EXPECT_EQ(master.command({"GET", key("t:ticket-refused")}).type, redis_reply_type::nil);

    // The replica comes back and catches up: the batch is found and published, once.
    replica.resume();
    ASSERT_TRUE(loop.run_until([&] { return store->available(); }, 5s)) << "the store never saw the writes replicated again";
    ASSERT_TRUE(loop.run_until([&] { return log.count(broker_event::kind::admitted) == 1; }, 5s));
    ASSERT_TRUE(loop.run_until([&] { return !published.empty(); }, 5s));
    sync_with_recorder();
    // Once: the admission's batch (the take-back below may already have published its end).
    std::size_t admissions = 0;
    for (const auto& b : published) admissions += b["ev"][0]["k"] == "adm";
    ASSERT_EQ(admissions, 1u);
    EXPECT_EQ(published[0]["ev"][0]["k"], "adm");
    EXPECT_EQ(std::to_string(published[0]["ev"][0]["id"].get<std::uint64_t>()), id.text);
    EXPECT_EQ(counters.store_up.load(), 1);

    // Nobody was told of that place (its join answered 503, so no page holds its ticket): once
    // writes reach the replica again it is taken back, and the slot goes to the next visitor.
    ASSERT_TRUE(loop.run_until([&] { return master.command({"ZCARD", key("a")}).integer == 0; }, 5s))
        << "the untold admission still holds the slot";
    const auto [again, next] = join(*store, "ticket-fresh-2");
    ASSERT_EQ(again, store_error::none);
    EXPECT_EQ(next.what, join_outcome::kind::joined);
    EXPECT_EQ(next.status.state, entry_state::active);
    EXPECT_EQ(master.command({"ZCARD", key("a")}).integer + master.command({"ZCARD", key("q")}).integer, 1)
        << "the untold place is gone, the new one is the only live one";
}

TEST_F(redis_store_durability, scripts_are_idempotent_by_ticket_and_call_id) {
    auto store = make_store(0);
    ASSERT_TRUE(loop.run_until([&] { return store->available() && log.resyncs > 0; }, 5s));
    const auto [e1, first] = join(*store, "ticket-a");
    ASSERT_EQ(e1, store_error::none);
    ASSERT_EQ(first.status.state, entry_state::active);
    for (int i = 0; i < 3; ++i) {
        const auto [e, again] = join(*store, "ticket-a-retry-" + std::to_string(i), "ticket-a");
        ASSERT_EQ(e, store_error::none);
        EXPECT_EQ(again.what, join_outcome::kind::existing);
        EXPECT_EQ(again.status.entry_id, first.status.entry_id);
    }
    EXPECT_EQ(entries(), 1);
    const auto [e2, queued] = join(*store, "ticket-b");
    ASSERT_EQ(queued.status.position, 1u);
    const auto [e3, queued_again] = join(*store, "ticket-b-retry", "ticket-b");
    EXPECT_EQ(queued_again.status.position, 1u) << "a retry must keep the place, not take another";
    EXPECT_EQ(master.command({"ZCARD", key("q")}).integer, 1);

    for (int i = 0; i < 2; ++i) {
        const auto [e, recorded] =
            call<call_recording>([&](auto done) { store->record_call(first.status.entry_id, "rtc_idempotent", done); });
        EXPECT_EQ(recorded, call_recording::recorded);
    }
    EXPECT_EQ(master.command({"LLEN", key("c:" + std::to_string(first.status.entry_id))}).integer, 1);

    for (int i = 0; i < 2; ++i) {
        const auto [e, left] = call<std::optional<entry_status>>([&](auto done) { store->leave("ticket-a", done); });
        ASSERT_EQ(e, store_error::none);
        EXPECT_EQ(left->state, entry_state::ended);
    }
    ASSERT_TRUE(loop.run_until([&] { return log.count(broker_event::kind::admitted) == 2; }, 5s));
    EXPECT_EQ(log.count(broker_event::kind::ended), 1u) << "a repeated leave ended the session twice";
    EXPECT_EQ(master.command({"ZCARD", key("a")}).integer, 1) << "the next visitor holds the slot, nobody else";
}

}  // namespace
}  // namespace voice_broker::testing
