// The operator's controls in redis mode, against a real redis-server with two store instances
// ("one" and "two") sharing it, as two broker processes would:
//   - the console on one instance sees the other's visitors (holders, then the queue in order,
//     with the address, the instance, the live channel), and ends or removes them: the change
//     reaches the other instance's listener, and the freed slot goes to the next in line;
//   - the pause and the operator's limits live in Redis: a pause set on one holds the other's
//     admissions (its queued statuses say paused) until it is lifted; raised limits admit at once
//     and reach the other instance's limits;
//   - the admission gate (the cost guard's budget) holds the admissions of the instance that has
//     it until recheck_admissions() finds it open.
#include "redis_store.hpp"
#include "redis_test_loop.hpp"
#include "redis_test_server.hpp"
#include "store_event_log.hpp"
#include "voice_broker/metrics.hpp"

#include <gtest/gtest.h>

#include <set>

namespace voice_broker::testing {
namespace {

using namespace std::chrono_literals;

using event_log = store_event_log;

class redis_store_admin : public ::testing::Test {
protected:
    struct instance {
        std::unique_ptr<session_store> store;
        event_log log;
    };

    std::unique_ptr<instance> start(const std::string& id) {
        session_limits l;
        l.max_concurrent_users = 1;
        l.max_queue_length = 10;
        l.session_duration = 60s;
        l.heartbeat_timeout = 30s;
        l.admission_grace = 20s;
        redis_store_options options;
        options.settings.redis_url = "redis://127.0.0.1:" + std::to_string(server.port()) + "/0";
        options.settings.key_prefix = prefix;
        options.settings.instance_id = id;
        options.touch_period = 200ms;
        auto out = std::make_unique<instance>();
        out->store = make_redis_store(loop.executor(), l, [] { return std::chrono::steady_clock::now(); }, options, counters);
        out->store->set_listener(&out->log);
        auto* i = out.get();
        EXPECT_TRUE(loop.run_until([&] { return i->store->available() && i->log.resyncs > 0; }, 5s));
        return out;
    }

    template <class T, class Op>
    std::pair<store_error, T> call(Op op) {
        std::optional<std::pair<store_error, T>> out;
        op([&](store_error e, T v) { out.emplace(e, std::move(v)); });
        EXPECT_TRUE(loop.run_until([&] { return out.has_value(); }, 5s));
        return out.value_or(std::pair{store_error::unavailable, T{}});
    }

    entry_status join(instance& i, const std::string& ticket, const std::string& address = "203.0.113.7") {
        auto [error, outcome] = call<join_outcome>([&](auto done) { i.store->join(join_request{ticket, std::nullopt, address}, done); });
        EXPECT_EQ(error, store_error::none);
        return outcome.status;
    }

    store_admin_view view(instance& i) {
        auto [error, v] = call<store_admin_view>([&](auto done) { i.store->admin_view(done); });
        EXPECT_EQ(error, store_error::none);
        return v;
    }

    bool end(instance& i, std::uint64_t id, end_reason why = end_reason::forced) {
        auto [error, done] = call<bool>([&](auto d) { i.store->end_session(id, why, d); });
        EXPECT_EQ(error, store_error::none);
        return done;
    }

    std::string prefix = "admin-" + std::to_string(::getpid());
    redis_test_server server;
    redis_test_loop loop;
    metrics counters;
};

TEST_F(redis_store_admin, the_console_on_one_instance_sees_and_ends_the_other_instances_visitors) {
    auto one = start("one");
    auto two = start("two");
    const auto a = join(*two, "tk_a", "198.51.100.1");
    const auto b = join(*two, "tk_b", "198.51.100.2");
    ASSERT_EQ(a.state, entry_state::active);
    ASSERT_EQ(b.state, entry_state::queued);

    const auto v = view(*one);
    ASSERT_EQ(v.entries.size(), 2u);
    EXPECT_EQ(v.entries[0].entry.entry_id, a.entry_id);
    EXPECT_EQ(v.entries[0].entry.state, entry_state::active);
    EXPECT_EQ(v.entries[0].client_address, "198.51.100.1");
    EXPECT_EQ(v.entries[0].instance, "two");
    EXPECT_GT(v.entries[0].entry.expires_at, v.entries[0].entry.started_at);
    EXPECT_EQ(v.entries[1].entry.entry_id, b.entry_id);
    EXPECT_EQ(v.entries[1].entry.state, entry_state::queued);
    EXPECT_EQ(v.entries[1].entry.position, 1u);
    EXPECT_EQ(v.entries[1].instance, "two");
    EXPECT_FALSE(v.paused);
    EXPECT_EQ(v.limits.max_concurrent_users, 1u);
    std::set<std::string> instances;
    for (const auto& i : v.instances) instances.insert(i.id);
    EXPECT_EQ(instances, (std::set<std::string>{"one", "two"}));
    ASSERT_TRUE(v.today.has_value());
    EXPECT_EQ(v.today->sessions_started, 1u);

    EXPECT_TRUE(end(*one, a.entry_id));
    EXPECT_FALSE(end(*one, a.entry_id));  // ended already
    EXPECT_FALSE(end(*one, b.entry_id + 1000));
    ASSERT_TRUE(loop.run_until([&] { return two->log.saw(broker_event::kind::admitted, b.entry_id); }, 5s));
    EXPECT_EQ(two->log.ended(a.entry_id), end_reason::forced);
    EXPECT_EQ(one->log.ended(a.entry_id), end_reason::forced);
    EXPECT_EQ(two->store->active_count(), 1u);
    EXPECT_EQ(two->store->queue_length(), 0u);
}

TEST_F(redis_store_admin, removing_a_queued_visitor_reaches_every_instance) {
    auto one = start("one");
    auto two = start("two");
    const auto a = join(*two, "tk_a");
    join(*two, "tk_b");
    const auto c = join(*two, "tk_c");
    ASSERT_TRUE(loop.run_until([&] { return one->store->queue_length() == 2; }, 5s));

    auto [error, removed] = call<bool>([&](auto d) { one->store->remove_queued(c.entry_id, d); });
    EXPECT_EQ(error, store_error::none);
    EXPECT_TRUE(removed);
    auto [error2, removed_active] = call<bool>([&](auto d) { one->store->remove_queued(a.entry_id, d); });
    EXPECT_EQ(error2, store_error::none);
    EXPECT_FALSE(removed_active);  // a holder is ended, not removed
    ASSERT_TRUE(loop.run_until([&] { return two->store->queue_length() == 1; }, 5s));
    EXPECT_EQ(two->log.ended(c.entry_id), end_reason::removed);
}

TEST_F(redis_store_admin, a_pause_set_on_one_instance_holds_the_others_admissions_until_lifted) {
    auto one = start("one");
    auto two = start("two");
    auto [error, paused] = call<bool>([&](auto d) { one->store->set_paused(true, d); });
    ASSERT_EQ(error, store_error::none);
    EXPECT_TRUE(paused);

    const auto a = join(*two, "tk_a");
    EXPECT_EQ(a.state, entry_state::queued);  // a free slot, but admissions are paused
    EXPECT_TRUE(a.paused);
    ASSERT_TRUE(loop.run_until([&] { return two->store->queue_length() == 1; }, 5s));
    bool queued_paused = false;
    two->store->for_each_queued_status([&](const entry_status& s) { queued_paused = s.paused; });
    EXPECT_TRUE(queued_paused);
    EXPECT_TRUE(view(*two).paused);

    auto [error2, still] = call<bool>([&](auto d) { one->store->set_paused(false, d); });
    ASSERT_EQ(error2, store_error::none);
    EXPECT_FALSE(still);
    ASSERT_TRUE(loop.run_until([&] { return two->log.saw(broker_event::kind::admitted, a.entry_id); }, 5s));
    EXPECT_FALSE(view(*one).paused);
}

TEST_F(redis_store_admin, raised_limits_admit_at_once_and_reach_every_instance) {
    auto one = start("one");
    auto two = start("two");
    join(*two, "tk_a");
    const auto b = join(*two, "tk_b");
    ASSERT_EQ(b.state, entry_state::queued);

    limits_change change;
    change.max_concurrent_users = 2;
    change.session_duration = 120s;
    auto [error, limits] = call<session_limits>([&](auto d) { one->store->change_limits(change, d); });
    ASSERT_EQ(error, store_error::none);
    EXPECT_EQ(limits.max_concurrent_users, 2u);
    EXPECT_EQ(limits.session_duration, 120s);
    ASSERT_TRUE(loop.run_until([&] { return two->log.saw(broker_event::kind::admitted, b.entry_id); }, 5s));
    EXPECT_EQ(two->store->limits().max_concurrent_users, 2u);
    EXPECT_EQ(two->store->limits().session_duration, 120s);

    // A third instance, started later, learns the operator's limits from Redis.
    auto three = start("three");
    EXPECT_EQ(three->store->limits().max_concurrent_users, 2u);
    const auto v = view(*three);
    EXPECT_EQ(v.limits.max_concurrent_users, 2u);
    ASSERT_EQ(v.entries.size(), 2u);
    EXPECT_EQ(v.entries[1].entry.expires_at - v.entries[1].entry.started_at, 120s);  // admitted under the new length
}

TEST_F(redis_store_admin, a_closed_admission_gate_holds_admissions_until_rechecked_open) {
    auto one = start("one");
    bool open = false;
    std::size_t asked_with = 99;
    one->store->set_admission_gate([&](steady_time, const std::vector<steady_time>& running_until) {
        asked_with = running_until.size();
        return open;
    });
    const auto a = join(*one, "tk_a");
    EXPECT_EQ(a.state, entry_state::queued);  // a free slot, but the gate is closed
    EXPECT_EQ(asked_with, 0u);
    one->store->recheck_admissions();
    // A status asked after the recheck is answered after it (one connection, in order).
    auto [error, status] = call<std::optional<entry_status>>([&](auto d) { one->store->status("tk_a", d); });
    ASSERT_EQ(error, store_error::none);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->state, entry_state::queued);  // a recheck with the gate still closed admits nobody
    EXPECT_FALSE(one->log.saw(broker_event::kind::admitted, a.entry_id));

    open = true;
    one->store->recheck_admissions();
    ASSERT_TRUE(loop.run_until([&] { return one->log.saw(broker_event::kind::admitted, a.entry_id); }, 5s));
}

}  // namespace
}  // namespace voice_broker::testing
