// The spend budget in redis mode (shared_budget.hpp, docs/COST.md), against a real redis-server
// with two store instances ("one" and "two") sharing it, as two broker processes would.  Each
// instance is linked to the budget as the cost guard links it: the terms (periods, limits, price)
// come from the test, and the shared spend each answer reports is recorded.  The budget is about
// one session: $0.10 a day at $0.06 a minute, sessions of one minute.
//   - a lease on one instance is committed cost on the other: its join is queued, not admitted;
//   - spend recorded by one instance refuses the other's new visitors (budget_exhausted), and the
//     other's answers show it;
//   - a session's end charges its minutes in the same step that frees its slot, less the real
//     cost reported for it, so the next in line is not admitted on a spend not yet counted;
//   - the spend is in Redis: two new instances see it and still refuse;
//   - a new period (injected through the terms) admits again;
//   - the 80 % and 100 % lines are reported once, to the instance whose addition crossed them.
#include "redis_store.hpp"
#include "redis_test_loop.hpp"
#include "redis_test_server.hpp"
#include "store_event_log.hpp"
#include "voice_broker/metrics.hpp"

#include <gtest/gtest.h>

namespace voice_broker::testing {
namespace {

using namespace std::chrono_literals;

using event_log = store_event_log;

class redis_store_budget : public ::testing::Test {
protected:
    struct instance {
        std::unique_ptr<session_store> store;
        event_log log;
        std::optional<shared_spend> spend;  // the last one reported
        std::vector<shared_spend::crossing> crossed;
    };

    std::unique_ptr<instance> start(const std::string& id, std::size_t users) {
        session_limits l;
        l.max_concurrent_users = users;
        l.max_queue_length = 10;
        l.session_duration = 60s;
        l.heartbeat_timeout = 600s;
        l.admission_grace = 300s;
        redis_store_options options;
        options.settings.redis_url = "redis://127.0.0.1:" + std::to_string(server.port()) + "/0";
        options.settings.key_prefix = prefix;
        options.settings.instance_id = id;
        options.touch_period = 200ms;
        auto out = std::make_unique<instance>();
        out->store = make_redis_store(loop.executor(), l, [] { return std::chrono::steady_clock::now(); }, options, counters);
        out->store->set_listener(&out->log);
        auto* i = out.get();
        EXPECT_NE(i->store->budget_keeper(), nullptr);
        i->store->budget_keeper()->link_budget([this] { return std::optional<budget_terms>(terms); },
                                               [i](const shared_spend& s) {
                                                   i->spend = s;
                                                   i->crossed.insert(i->crossed.end(), s.crossed.begin(), s.crossed.end());
                                               });
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

    join_outcome join(instance& i, const std::string& ticket) {
        auto [error, outcome] = call<join_outcome>([&](auto done) { i.store->join(join_request{ticket, std::nullopt, "203.0.113.7"}, done); });
        EXPECT_EQ(error, store_error::none);
        return outcome;
    }

    void leave(instance& i, const std::string& ticket) {
        auto [error, s] = call<std::optional<entry_status>>([&](auto done) { i.store->leave(ticket, done); });
        EXPECT_EQ(error, store_error::none);
    }

    // Adds spending through `i` and waits until Redis has it.
    void spend(instance& i, spend_delta delta) {
        i.store->budget_keeper()->add_spend(delta);
        ASSERT_TRUE(loop.run_until([&] { return !i.store->budget_keeper()->spend_pending(); }, 5s));
    }

    // Any run of the script reports the spend: stats is one that changes nothing.
    period_spend day_seen_by(instance& i) {
        i.spend.reset();
        call<store_stats>([&](auto done) { i.store->stats(done); });
        EXPECT_TRUE(i.spend.has_value());
        return i.spend ? i.spend->day : period_spend{};
    }

    void move_redis_clock(std::chrono::milliseconds by) {
        server.command({"INCRBY", "{" + prefix + "}:clock", std::to_string(by.count())});
    }

    static usd_amount usd(double dollars) { return usd_amount::from_dollars(dollars); }

    std::string prefix = "budget-" + std::to_string(::getpid());
    budget_terms terms{"2026-12-01", "2026-12", 100'000, 0, 60'000};  // $0.10 a day, $0.06 a minute
    redis_test_server server;
    redis_test_loop loop;
    metrics counters;
};

TEST_F(redis_store_budget, a_lease_on_one_instance_is_committed_cost_on_the_other) {
    auto one = start("one", 2);
    auto two = start("two", 2);
    const auto a = join(*one, "tk_a");
    ASSERT_EQ(a.status.state, entry_state::active);
    // A slot is free, but $0.06 committed to a's minute + $0.06 for one more is over $0.10.
    const auto b = join(*two, "tk_b");
    EXPECT_EQ(b.what, join_outcome::kind::joined);
    EXPECT_EQ(b.status.state, entry_state::queued);

    // Without the budget the same join is admitted at once (the slot was the only other limit).
    terms.daily_micro_usd = 0;
    const auto c = join(*two, "tk_c");
    EXPECT_EQ(c.status.state, entry_state::queued);  // FIFO: b is first in line
    two->store->recheck_admissions();
    ASSERT_TRUE(loop.run_until([&] { return two->log.saw(broker_event::kind::admitted, b.status.entry_id); }, 5s));
}

TEST_F(redis_store_budget, spend_recorded_by_one_instance_refuses_the_others_new_visitors) {
    auto one = start("one", 2);
    auto two = start("two", 2);
    spend(*one, {0, usd(0.03), usd(0.02), {}});
    const auto day = day_seen_by(*two);
    EXPECT_EQ(day.key, "2026-12-01");
    EXPECT_EQ(day.real, usd(0.03));
    EXPECT_EQ(day.estimated, usd(0.02));

    // $0.05 spent + $0.06 for one session > $0.10: not even one fits before the reset.
    const auto refused = join(*two, "tk_a");
    EXPECT_EQ(refused.what, join_outcome::kind::budget_exhausted);
    EXPECT_EQ(two->store->queue_length(), 0u);
    EXPECT_EQ(join(*one, "tk_b").what, join_outcome::kind::budget_exhausted);
}

TEST_F(redis_store_budget, a_sessions_end_charges_its_minutes_before_the_next_is_admitted) {
    auto one = start("one", 1);
    auto two = start("two", 1);
    const auto a = join(*one, "tk_a");
    ASSERT_EQ(a.status.state, entry_state::active);
    const auto b = join(*two, "tk_b");
    ASSERT_EQ(b.status.state, entry_state::queued);
    // OpenAI reported $0.03 of a's cost; a talks 50 s (an estimate of $0.05).
    spend(*two, {a.status.entry_id, usd(0.03), {}, {}});
    move_redis_clock(50s);
    leave(*one, "tk_a");
    // The end charged the rest of a's estimate ($0.02) at once: $0.05 + $0.06 > $0.10, so b
    // waits although the slot is free.
    const auto day = day_seen_by(*two);
    EXPECT_EQ(day.real, usd(0.03));
    EXPECT_NEAR(day.estimated.dollars(), 0.02, 0.0002);  // the script's few ms
    EXPECT_FALSE(two->log.saw(broker_event::kind::admitted, b.status.entry_id));
    two->store->recheck_admissions();
    loop.run_until([] { return false; }, 300ms);  // a run that could admit, and its batch
    EXPECT_FALSE(two->log.saw(broker_event::kind::admitted, b.status.entry_id));
    EXPECT_EQ(one->store->active_count(), 0u);
    EXPECT_EQ(one->store->queue_length(), 1u);
}

TEST_F(redis_store_budget, the_spend_survives_both_instances_and_a_new_day_admits_again) {
    std::uint64_t waiting = 0;
    {
        auto one = start("one", 1);
        auto two = start("two", 1);
        const auto a = join(*one, "tk_a");
        ASSERT_EQ(a.status.state, entry_state::active);
        const auto b = join(*two, "tk_b");
        ASSERT_EQ(b.status.state, entry_state::queued);
        waiting = b.status.entry_id;
        spend(*two, {0, {}, usd(0.05), {}});
        leave(*one, "tk_a");
        EXPECT_FALSE(one->log.saw(broker_event::kind::admitted, waiting));
    }
    // Both instances are gone; two new ones find the spend in Redis.
    auto three = start("three", 1);
    auto four = start("four", 1);
    EXPECT_GE(day_seen_by(*four).total(), usd(0.05));
    EXPECT_EQ(join(*three, "tk_c").what, join_outcome::kind::budget_exhausted);
    four->store->recheck_admissions();
    loop.run_until([] { return false; }, 300ms);
    EXPECT_FALSE(four->log.saw(broker_event::kind::admitted, waiting));

    // Midnight in BUDGET_TIMEZONE: the instances name a new day, whose spend is zero.
    terms.day_period = "2026-12-02";
    four->store->recheck_admissions();
    ASSERT_TRUE(loop.run_until([&] { return four->log.saw(broker_event::kind::admitted, waiting); }, 5s));
    const auto day = day_seen_by(*three);
    EXPECT_EQ(day.key, "2026-12-02");
    EXPECT_EQ(day.total(), usd_amount{});
    // The old day's key expires on its own.
    const auto ttl = server.command({"PTTL", "{" + prefix + "}:spend:day:2026-12-01"});
    EXPECT_GT(ttl.integer, 0);
    EXPECT_LE(ttl.integer, 3LL * 86400000);
}

TEST_F(redis_store_budget, each_line_is_reported_once_to_the_instance_that_crossed_it) {
    auto one = start("one", 1);
    auto two = start("two", 1);
    spend(*one, {0, usd(0.05), {}, {}});
    spend(*two, {0, usd(0.031), {}, {}});  // $0.081: 80 %
    spend(*one, {0, usd(0.001), {}, {}});
    spend(*one, {0, usd(0.02), {}, {}});   // $0.102: 100 %
    spend(*two, {0, usd(0.02), {}, {}});
    ASSERT_EQ(two->crossed.size(), 1u);
    EXPECT_EQ(two->crossed[0].percent, 80);
    EXPECT_FALSE(two->crossed[0].monthly);
    ASSERT_EQ(one->crossed.size(), 1u);
    EXPECT_EQ(one->crossed[0].percent, 100);
    EXPECT_TRUE(day_seen_by(*one).warned_80);
}

TEST_F(redis_store_budget, the_monthly_budget_applies_the_same_way) {
    terms.daily_micro_usd = 0;
    terms.monthly_micro_usd = 100'000;
    auto one = start("one", 2);
    auto two = start("two", 2);
    spend(*one, {0, {}, usd(0.05), {}});
    EXPECT_EQ(join(*two, "tk_a").what, join_outcome::kind::budget_exhausted);
    terms.month_period = "2027-01";
    terms.day_period = "2027-01-01";
    EXPECT_EQ(join(*two, "tk_b").status.state, entry_state::active);
}

}  // namespace
}  // namespace voice_broker::testing
