// Unit tests for session_broker, the sans-I/O core: slots, the FIFO queue, deadlines and
// warnings.  Time is a plain argument, so every test states exactly when things happen.
#include "voice_broker/session_broker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using kind = broker_event::kind;

// An arbitrary, far-from-zero origin so that "time zero" bugs cannot hide.
const steady_time t0 = steady_time{} + std::chrono::hours{1000};

session_limits make_limits(std::size_t slots, std::size_t queue, seconds duration, std::vector<seconds> warnings = {},
                           seconds heartbeat = 30s, seconds grace = 20s) {
    session_limits l;
    l.max_concurrent_users = slots;
    l.max_queue_length = queue;
    l.session_duration = duration;
    l.warnings = std::move(warnings);
    l.heartbeat_timeout = heartbeat;
    l.admission_grace = grace;
    return l;
}

bool opened(const channel_opening& o) { return o.what == channel_opening::kind::opened; }

// The entry id of a ticket the broker knows (0 when it does not).
std::uint64_t id_of(const session_broker& b, const std::string& ticket) {
    const auto s = b.status(ticket, steady_time{});
    return s ? s->entry_id : 0;
}

// Events name entries by id; these helpers name them by ticket, as the tests do.
std::string ticket_of(const session_broker& b, const broker_event& ev) { return std::string(b.ticket_of(ev.entry_id)); }

std::vector<std::string> tickets_of(const session_broker& b, const std::vector<broker_event>& events, kind what) {
    std::vector<std::string> out;
    for (const auto& ev : events) {
        if (ev.what == what) out.push_back(ticket_of(b, ev));
    }
    return out;
}

std::vector<std::string> admitted(const session_broker& b, const std::vector<broker_event>& events) {
    return tickets_of(b, events, kind::admitted);
}

struct end_record {
    std::string ticket;
    end_reason reason;
    bool was_active;
    bool operator==(const end_record&) const = default;
};

std::ostream& operator<<(std::ostream& os, const end_record& e) {
    return os << "{" << e.ticket << ", " << to_string(e.reason) << ", " << (e.was_active ? "active" : "queued") << "}";
}

std::vector<end_record> ends(const session_broker& b, const std::vector<broker_event>& events) {
    std::vector<end_record> out;
    for (const auto& ev : events) {
        if (ev.what == kind::ended) out.push_back({ticket_of(b, ev), ev.reason, ev.was_active});
    }
    return out;
}

bool has_queue_changed(const std::vector<broker_event>& events) {
    return std::any_of(events.begin(), events.end(), [](const broker_event& ev) { return ev.what == kind::queue_changed; });
}

join_outcome::kind join_kind(session_broker& b, const std::string& ticket, steady_time now) {
    return b.join(ticket, nullptr, now).what;
}

entry_state state_of(const session_broker& b, const std::string& ticket, steady_time now) {
    const auto s = b.status(ticket, now);
    EXPECT_TRUE(s.has_value()) << ticket;
    return s ? s->state : entry_state::ended;
}

// Calls advance() at every deadline up to and including `until`, as the service's timer does.
// Returns the events, each with the instant it happened at.
// An event, when it happened, and the ticket of its entry then (the entry may be forgotten later).
struct timed_event {
    steady_time at;
    broker_event ev;
    std::string ticket;
};

std::vector<timed_event> run_until(session_broker& b, steady_time until) {
    std::vector<timed_event> out;
    for (int guard = 0; guard < 10000; ++guard) {
        const auto next = b.next_deadline();
        if (!next || *next > until) return out;
        b.advance(*next);
        for (auto& ev : b.take_events()) {
            auto ticket = ticket_of(b, ev);
            out.push_back({*next, std::move(ev), std::move(ticket)});
        }
    }
    ADD_FAILURE() << "advance() never moved past a deadline";
    return out;
}

// --- joining and admission order ------------------------------------------------------------

TEST(session_broker_join, fills_the_slots_then_queues_in_join_order) {
    session_broker b(make_limits(2, 10, 300s));
    EXPECT_EQ(join_kind(b, "a", t0), join_outcome::kind::joined);
    EXPECT_EQ(join_kind(b, "b", t0 + 1s), join_outcome::kind::joined);
    const auto c = b.join("c", nullptr, t0 + 2s);
    const auto d = b.join("d", nullptr, t0 + 3s);

    EXPECT_EQ(admitted(b, b.take_events()), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(state_of(b, "a", t0 + 3s), entry_state::active);
    EXPECT_EQ(state_of(b, "b", t0 + 3s), entry_state::active);
    ASSERT_EQ(c.what, join_outcome::kind::joined);
    EXPECT_EQ(c.status.state, entry_state::queued);
    EXPECT_EQ(c.status.position, 1u);
    EXPECT_EQ(d.status.position, 2u);
    EXPECT_EQ(d.status.queue_length, 2u);
    EXPECT_EQ(b.active_count(), 2u);
    EXPECT_EQ(b.queue_length(), 2u);
}

TEST(session_broker_join, a_visitor_admitted_at_join_is_confirmed_and_starts_now) {
    session_broker b(make_limits(1, 10, 300s));
    const auto a = b.join("a", nullptr, t0);
    EXPECT_EQ(a.status.state, entry_state::active);
    EXPECT_TRUE(a.status.confirmed);
    EXPECT_EQ(a.status.started_at, t0);
    EXPECT_EQ(a.status.expires_at, t0 + 300s);
    EXPECT_EQ(a.status.remaining_seconds, 300);
    const auto events = b.take_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].what, kind::admitted);
    EXPECT_EQ(events[0].waited_since, t0);
}

TEST(session_broker_join, admissions_follow_join_order_whoever_frees_the_slot) {
    session_broker b(make_limits(2, 10, 300s, {}, 3600s));
    for (const char* t : {"a", "b", "q1", "q2", "q3", "q4"}) b.join(t, nullptr, t0);
    b.take_events();

    b.leave("b", t0 + 10s);  // the second holder frees first
    EXPECT_EQ(admitted(b, b.take_events()), (std::vector<std::string>{"q1"}));
    b.leave("q1", t0 + 11s);
    EXPECT_EQ(admitted(b, b.take_events()), (std::vector<std::string>{"q2"}));
    b.leave("a", t0 + 12s);
    const auto events = b.take_events();
    EXPECT_EQ(admitted(b, events), (std::vector<std::string>{"q3"}));
    EXPECT_EQ(b.status("q4", t0 + 12s)->position, 1u);
}

TEST(session_broker_join, admitted_event_says_when_the_visitor_joined) {
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    b.join("a", nullptr, t0);
    b.join("b", nullptr, t0 + 5s);
    b.take_events();
    b.leave("a", t0 + 42s);
    const auto events = b.take_events();
    const auto it = std::find_if(events.begin(), events.end(), [](const auto& ev) { return ev.what == kind::admitted; });
    ASSERT_NE(it, events.end());
    EXPECT_EQ(ticket_of(b, *it), "b");
    EXPECT_EQ(it->waited_since, t0 + 5s);
    EXPECT_EQ(b.status("b", t0 + 42s)->started_at, t0 + 42s);
    EXPECT_EQ(b.status("b", t0 + 42s)->expires_at, t0 + 42s + 300s);
}

TEST(session_broker_join, the_queue_is_bounded) {
    session_broker b(make_limits(1, 2, 300s, {}, 3600s));
    b.join("a", nullptr, t0);
    b.join("q1", nullptr, t0);
    b.join("q2", nullptr, t0);
    const auto full = b.join("q3", nullptr, t0 + 1s);
    EXPECT_EQ(full.what, join_outcome::kind::queue_full);
    EXPECT_FALSE(b.status("q3", t0 + 1s).has_value()) << "a refused visitor must not get an entry";
    EXPECT_EQ(b.queue_length(), 2u);

    b.leave("q1", t0 + 2s);  // a place frees up
    EXPECT_EQ(join_kind(b, "q3", t0 + 3s), join_outcome::kind::joined);
    EXPECT_EQ(b.status("q3", t0 + 3s)->position, 2u);
    EXPECT_EQ(join_kind(b, "q4", t0 + 3s), join_outcome::kind::queue_full);
}

TEST(session_broker_join, a_zero_length_queue_refuses_everyone_once_the_slots_are_taken) {
    session_broker b(make_limits(1, 0, 300s));
    EXPECT_EQ(join_kind(b, "a", t0), join_outcome::kind::joined);
    EXPECT_EQ(join_kind(b, "b", t0), join_outcome::kind::queue_full);
}

TEST(session_broker_join, joining_again_with_a_live_ticket_returns_the_same_place) {
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    b.join("a", nullptr, t0);
    b.join("q1", nullptr, t0);
    b.join("q2", nullptr, t0);
    b.take_events();

    const std::string existing_active = "a";
    const auto again_active = b.join("fresh1", &existing_active, t0 + 1s);
    EXPECT_EQ(again_active.what, join_outcome::kind::existing);
    EXPECT_EQ(again_active.status.ticket, "a");
    EXPECT_EQ(again_active.status.state, entry_state::active);

    const std::string existing_queued = "q2";
    const auto again_queued = b.join("fresh2", &existing_queued, t0 + 1s);
    EXPECT_EQ(again_queued.what, join_outcome::kind::existing);
    EXPECT_EQ(again_queued.status.ticket, "q2");
    EXPECT_EQ(again_queued.status.position, 2u);

    EXPECT_EQ(b.active_count(), 1u);
    EXPECT_EQ(b.queue_length(), 2u);
    EXPECT_FALSE(b.status("fresh1", t0 + 1s).has_value());
    EXPECT_FALSE(b.status("fresh2", t0 + 1s).has_value());
    EXPECT_TRUE(b.take_events().empty());
}

TEST(session_broker_join, joining_with_an_ended_ticket_makes_a_new_entry) {
    session_broker b(make_limits(1, 10, 300s));
    b.join("a", nullptr, t0);
    b.leave("a", t0 + 1s);
    const std::string old = "a";
    const auto again = b.join("a2", &old, t0 + 2s);
    EXPECT_EQ(again.what, join_outcome::kind::joined);
    EXPECT_EQ(again.status.ticket, "a2");
    EXPECT_EQ(again.status.state, entry_state::active);
    EXPECT_EQ(b.status("a", t0 + 2s)->state, entry_state::ended);
}

TEST(session_broker_join, a_queued_visitor_sees_positions_and_queued_statuses_agree) {
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    for (const char* t : {"a", "q1", "q2", "q3"}) b.join(t, nullptr, t0);
    const auto all = b.queued_statuses(t0 + 10s);
    ASSERT_EQ(all.size(), 3u);
    for (std::size_t i = 0; i < all.size(); ++i) {
        const auto one = b.status(all[i].ticket, t0 + 10s);
        ASSERT_TRUE(one);
        EXPECT_EQ(all[i].position, i + 1);
        EXPECT_EQ(one->position, i + 1);
        EXPECT_EQ(one->eta_seconds, all[i].eta_seconds);
        EXPECT_EQ(one->queue_length, 3u);
        EXPECT_EQ(all[i].queue_length, 3u);
    }
    EXPECT_EQ(all[0].ticket, "q1");
    EXPECT_EQ(all[2].ticket, "q3");
}

// --- every end reason -------------------------------------------------------------------------

TEST(session_broker_end, a_session_expires_at_exactly_its_duration) {
    session_broker b(make_limits(1, 10, 60s));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.take_events();

    b.advance(t0 + 60s - 1ms);
    EXPECT_TRUE(b.take_events().empty());
    EXPECT_EQ(state_of(b, "a", t0 + 60s - 1ms), entry_state::active);

    b.advance(t0 + 60s);
    const auto events = b.take_events();
    EXPECT_EQ(ends(b, events), (std::vector<end_record>{{"a", end_reason::expired, true}}));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].started_at, t0);
    const auto s = b.status("a", t0 + 60s);
    EXPECT_EQ(s->state, entry_state::ended);
    EXPECT_EQ(s->reason, end_reason::expired);
    EXPECT_EQ(b.active_count(), 0u);
}

TEST(session_broker_end, expiry_admits_the_next_visitor_with_a_full_session) {
    session_broker b(make_limits(1, 10, 60s, {}, 3600s));
    b.join("a", nullptr, t0);
    b.join("b", nullptr, t0 + 1s);
    b.take_events();
    b.advance(t0 + 60s);
    const auto events = b.take_events();
    EXPECT_EQ(ends(b, events), (std::vector<end_record>{{"a", end_reason::expired, true}}));
    EXPECT_EQ(admitted(b, events), (std::vector<std::string>{"b"}));
    EXPECT_EQ(b.status("b", t0 + 60s)->expires_at, t0 + 120s);
}

// The spend budget's gate: a session that ends in the same step as the admission it frees has
// not been booked yet, so the gate sees it as committed (now + the time it ran), and the ones
// still running by their deadlines.  Sessions ended in an earlier step are booked by then.
TEST(session_broker_end, the_gate_counts_a_session_ended_in_the_same_step_as_committed) {
    session_broker b(make_limits(2, 10, 60s, {}, 3600s));
    std::vector<std::vector<steady_time>> asked;
    b.set_admission_gate([&asked](steady_time, const std::vector<steady_time>& running_until) {
        asked.push_back(running_until);
        return true;
    });
    b.join("a", nullptr, t0);
    b.join("b", nullptr, t0 + 10s);
    b.join("q", nullptr, t0 + 20s);
    b.take_events();
    asked.clear();
    EXPECT_TRUE(b.leave("a", t0 + 40s));
    ASSERT_EQ(asked.size(), 1u);
    auto seen = asked[0];
    std::sort(seen.begin(), seen.end());
    // b runs until t0 + 70 s; a ran 40 s, not yet booked: counted as t0 + 40 s + 40 s.
    EXPECT_EQ(seen, (std::vector<steady_time>{t0 + 70s, t0 + 80s}));
    EXPECT_EQ(admitted(b, b.take_events()), (std::vector<std::string>{"q"}));
    asked.clear();
    b.join("r", nullptr, t0 + 41s);  // queued: both slots are taken
    EXPECT_TRUE(b.leave("q", t0 + 45s));
    ASSERT_EQ(asked.size(), 1u);
    seen = asked[0];
    std::sort(seen.begin(), seen.end());
    // a was taken (booked) in the step before; q ran 5 s.
    EXPECT_EQ(seen, (std::vector<steady_time>{t0 + 50s, t0 + 70s}));
}

TEST(session_broker_end, a_session_that_reaches_its_end_as_it_falls_silent_counts_as_expired) {
    session_broker b(make_limits(1, 10, 60s, {}, 30s));
    b.join("a", nullptr, t0);
    b.heartbeat("a", t0 + 30s);  // the heartbeat timeout now falls exactly on the end
    b.take_events();
    b.advance(t0 + 60s);
    EXPECT_EQ(ends(b, b.take_events()), (std::vector<end_record>{{"a", end_reason::expired, true}}));
}

TEST(session_broker_end, leave_ends_an_active_or_a_queued_entry_once) {
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    b.join("a", nullptr, t0);
    b.join("q1", nullptr, t0);
    b.join("q2", nullptr, t0);
    b.take_events();

    EXPECT_TRUE(b.leave("q1", t0 + 1s));
    auto events = b.take_events();
    EXPECT_EQ(ends(b, events), (std::vector<end_record>{{"q1", end_reason::left, false}}));
    EXPECT_TRUE(has_queue_changed(events)) << "q2 moved up";
    EXPECT_EQ(b.status("q2", t0 + 1s)->position, 1u);

    EXPECT_TRUE(b.leave("a", t0 + 2s));
    events = b.take_events();
    EXPECT_EQ(ends(b, events), (std::vector<end_record>{{"a", end_reason::left, true}}));
    EXPECT_EQ(admitted(b, events), (std::vector<std::string>{"q2"}));

    EXPECT_FALSE(b.leave("a", t0 + 3s)) << "already ended";
    EXPECT_FALSE(b.leave("nobody", t0 + 3s));
    EXPECT_TRUE(b.take_events().empty());
    EXPECT_EQ(b.status("a", t0 + 3s)->reason, end_reason::left);
}

TEST(session_broker_end, force_end_all_ends_only_holders_and_the_queue_moves_up) {
    session_broker b(make_limits(2, 10, 300s, {}, 3600s));
    for (const char* t : {"a", "b", "q1", "q2", "q3"}) b.join(t, nullptr, t0);
    b.take_events();

    EXPECT_EQ(b.force_end_all(t0 + 5s), 2u);
    const auto events = b.take_events();
    auto ended = ends(b, events);
    std::sort(ended.begin(), ended.end(), [](const auto& x, const auto& y) { return x.ticket < y.ticket; });
    EXPECT_EQ(ended, (std::vector<end_record>{{"a", end_reason::forced, true}, {"b", end_reason::forced, true}}));
    EXPECT_EQ(admitted(b, events), (std::vector<std::string>{"q1", "q2"}));
    EXPECT_EQ(state_of(b, "q1", t0 + 5s), entry_state::active) << "the newly admitted are not ended too";
    EXPECT_EQ(state_of(b, "q2", t0 + 5s), entry_state::active);
    EXPECT_EQ(b.status("q3", t0 + 5s)->position, 1u);
    EXPECT_EQ(b.status("a", t0 + 5s)->reason, end_reason::forced);

    EXPECT_EQ(b.force_end_all(t0 + 6s), 2u);
    b.take_events();
    EXPECT_EQ(b.force_end_all(t0 + 7s), 1u);  // q3
    b.take_events();
    EXPECT_EQ(b.force_end_all(t0 + 8s), 0u);
    EXPECT_TRUE(b.take_events().empty());
}

TEST(session_broker_end, shutdown_ends_everyone_and_refuses_new_joins) {
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    for (const char* t : {"a", "q1", "q2"}) b.join(t, nullptr, t0);
    b.take_events();

    b.shutdown(t0 + 1s);
    const auto events = b.take_events();
    EXPECT_TRUE(admitted(b, events).empty()) << "nobody is admitted while shutting down";
    auto ended = ends(b, events);
    std::sort(ended.begin(), ended.end(), [](const auto& x, const auto& y) { return x.ticket < y.ticket; });
    EXPECT_EQ(ended, (std::vector<end_record>{{"a", end_reason::shutdown, true},
                                              {"q1", end_reason::shutdown, false},
                                              {"q2", end_reason::shutdown, false}}));
    EXPECT_EQ(b.active_count(), 0u);
    EXPECT_EQ(b.queue_length(), 0u);
    EXPECT_EQ(join_kind(b, "late", t0 + 2s), join_outcome::kind::queue_full);
    EXPECT_FALSE(b.status("late", t0 + 2s).has_value());
}

// --- heartbeats and abandonment ---------------------------------------------------------------

TEST(session_broker_heartbeat, a_silent_queued_entry_is_abandoned_after_the_timeout) {
    session_broker b(make_limits(1, 10, 3600s, {}, 30s));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.join("q1", nullptr, t0);
    b.join("q2", nullptr, t0);
    b.channel_opened("q2", t0);
    b.take_events();

    ASSERT_TRUE(b.heartbeat("q1", t0 + 20s));
    b.advance(t0 + 50s - 1ms);
    EXPECT_TRUE(b.take_events().empty()) << "the heartbeat at 20 s moved the timeout to 50 s";
    EXPECT_EQ(b.next_deadline(), t0 + 50s);

    b.advance(t0 + 50s);
    const auto events = b.take_events();
    EXPECT_EQ(ends(b, events), (std::vector<end_record>{{"q1", end_reason::abandoned, false}}));
    EXPECT_TRUE(has_queue_changed(events));
    EXPECT_EQ(b.status("q2", t0 + 50s)->position, 1u);
}

TEST(session_broker_heartbeat, a_silent_active_entry_is_abandoned_and_the_slot_passes_on) {
    session_broker b(make_limits(1, 10, 3600s, {}, 30s));
    b.join("a", nullptr, t0);
    b.join("q1", nullptr, t0);
    b.channel_opened("q1", t0);
    b.take_events();

    b.advance(t0 + 30s - 1ms);
    EXPECT_TRUE(b.take_events().empty());
    b.advance(t0 + 30s);
    const auto events = b.take_events();
    EXPECT_EQ(ends(b, events), (std::vector<end_record>{{"a", end_reason::abandoned, true}}));
    EXPECT_EQ(admitted(b, events), (std::vector<std::string>{"q1"}));
}

TEST(session_broker_heartbeat, an_open_channel_keeps_the_entry_alive_until_it_closes) {
    session_broker b(make_limits(1, 10, 3600s, {}, 30s));
    b.join("a", nullptr, t0);
    b.join("q1", nullptr, t0);
    ASSERT_TRUE(opened(b.channel_opened("q1", t0)));
    ASSERT_TRUE(opened(b.channel_opened("q1", t0)));  // two tabs
    b.channel_opened("a", t0);
    b.take_events();

    b.advance(t0 + 1000s);
    EXPECT_TRUE(b.take_events().empty());
    b.channel_closed(id_of(b, "q1"), t0 + 1000s);
    b.advance(t0 + 2000s);
    EXPECT_TRUE(b.take_events().empty()) << "one channel is still open";

    b.channel_closed(id_of(b, "q1"), t0 + 2000s);
    b.channel_closed(id_of(b, "q1"), t0 + 2000s);  // an extra close must not count below zero
    b.advance(t0 + 2030s - 1ms);
    EXPECT_TRUE(b.take_events().empty()) << "the timeout runs from the moment the last channel closed";
    b.advance(t0 + 2030s);
    EXPECT_EQ(ends(b, b.take_events()), (std::vector<end_record>{{"q1", end_reason::abandoned, false}}));
}

TEST(session_broker_heartbeat, an_extra_close_does_not_cancel_a_later_open) {
    session_broker b(make_limits(1, 10, 3600s, {}, 30s));
    b.join("a", nullptr, t0);
    b.channel_closed(id_of(b, "a"), t0);  // nothing open yet: ignored
    b.channel_opened("a", t0 + 1s);
    b.take_events();
    b.advance(t0 + 500s);
    EXPECT_TRUE(ends(b, b.take_events()).empty());
}

TEST(session_broker_heartbeat, asking_to_join_again_counts_as_a_sign_of_life) {
    session_broker b(make_limits(1, 10, 3600s, {}, 30s));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.join("q1", nullptr, t0);
    const std::string q1 = "q1";
    b.join("unused", &q1, t0 + 25s);
    b.take_events();
    b.advance(t0 + 54s);
    EXPECT_TRUE(b.take_events().empty());
    b.advance(t0 + 55s);
    EXPECT_EQ(ends(b, b.take_events()), (std::vector<end_record>{{"q1", end_reason::abandoned, false}}));
}

TEST(session_broker_heartbeat, unknown_and_ended_tickets) {
    session_broker b(make_limits(1, 10, 300s));
    EXPECT_FALSE(b.heartbeat("nobody", t0).has_value());
    EXPECT_FALSE(opened(b.channel_opened("nobody", t0)));
    b.join("a", nullptr, t0);
    b.leave("a", t0 + 1s);
    b.take_events();
    const auto s = b.heartbeat("a", t0 + 2s);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->state, entry_state::ended);
    EXPECT_EQ(s->reason, end_reason::left);
    EXPECT_FALSE(opened(b.channel_opened("a", t0 + 2s)));
    EXPECT_TRUE(b.take_events().empty());
}

// --- admission grace ------------------------------------------------------------------------

class session_broker_grace : public ::testing::Test {
protected:
    // "a" holds the slot, "q" waits and keeps itself alive with heartbeats only; "a" leaves at
    // t0 + 10 s, so "q" is admitted then and has until t0 + 30 s to confirm.
    session_broker b{make_limits(1, 10, 3600s, {}, 60s, 20s)};
    const steady_time admitted_at = t0 + 10s;
    const steady_time grace_end = t0 + 30s;

    void SetUp() override {
        b.join("a", nullptr, t0);
        b.channel_opened("a", t0);
        b.join("q", nullptr, t0);
        b.heartbeat("q", t0 + 5s);
        b.take_events();
        b.leave("a", admitted_at);
        ASSERT_EQ(admitted(b, b.take_events()), (std::vector<std::string>{"q"}));
        ASSERT_FALSE(b.status("q", admitted_at)->confirmed);
    }

    void expect_still_active_after_grace() {
        b.advance(grace_end);
        EXPECT_TRUE(ends(b, b.take_events()).empty());
        EXPECT_EQ(state_of(b, "q", grace_end), entry_state::active);
        EXPECT_TRUE(b.status("q", grace_end)->confirmed);
    }
};

TEST_F(session_broker_grace, an_unconfirmed_admission_is_abandoned_when_the_grace_ends) {
    EXPECT_EQ(b.next_deadline(), grace_end);
    b.advance(grace_end - 1ms);
    EXPECT_TRUE(b.take_events().empty());
    b.advance(grace_end);
    EXPECT_EQ(ends(b, b.take_events()), (std::vector<end_record>{{"q", end_reason::abandoned, true}}));
}

TEST_F(session_broker_grace, a_heartbeat_confirms) {
    b.heartbeat("q", grace_end - 1s);
    expect_still_active_after_grace();
}

TEST_F(session_broker_grace, opening_a_channel_confirms) {
    b.channel_opened("q", grace_end - 1s);
    expect_still_active_after_grace();
}

TEST_F(session_broker_grace, joining_again_confirms) {
    const std::string q = "q";
    EXPECT_EQ(b.join("other", &q, grace_end - 1s).what, join_outcome::kind::existing);
    expect_still_active_after_grace();
}

TEST_F(session_broker_grace, reserving_a_token_confirms) {
    EXPECT_EQ(b.reserve_token("q", 3, grace_end - 1s), session_broker::token_reservation::reserved);
    expect_still_active_after_grace();
}

TEST_F(session_broker_grace, merely_asking_for_status_does_not_confirm) {
    b.status("q", grace_end - 1s);
    b.advance(grace_end);
    EXPECT_EQ(ends(b, b.take_events()), (std::vector<end_record>{{"q", end_reason::abandoned, true}}));
}

TEST(session_broker_grace_at_admission, an_open_channel_at_admission_counts_as_confirmed) {
    session_broker b(make_limits(1, 10, 3600s, {}, 60s, 20s));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.join("q", nullptr, t0);
    b.channel_opened("q", t0);
    b.take_events();
    b.leave("a", t0 + 10s);
    ASSERT_EQ(admitted(b, b.take_events()), (std::vector<std::string>{"q"}));
    EXPECT_TRUE(b.status("q", t0 + 10s)->confirmed);
    b.advance(t0 + 100s);
    EXPECT_TRUE(b.take_events().empty());
}

TEST(session_broker_grace_at_admission, signs_of_life_while_queued_do_not_count_as_confirming) {
    session_broker b(make_limits(1, 10, 3600s, {}, 60s, 20s));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.join("q", nullptr, t0);
    const std::string q = "q";
    b.join("unused", &q, t0 + 5s);  // asks again while waiting
    b.heartbeat("q", t0 + 6s);
    b.take_events();
    b.leave("a", t0 + 10s);
    ASSERT_EQ(admitted(b, b.take_events()), (std::vector<std::string>{"q"}));
    EXPECT_FALSE(b.status("q", t0 + 10s)->confirmed) << "only a sign of life after the admission confirms it";
    b.advance(t0 + 30s);
    EXPECT_EQ(ends(b, b.take_events()), (std::vector<end_record>{{"q", end_reason::abandoned, true}}));
}

TEST(session_broker_grace_at_admission, the_slot_passes_to_the_next_when_the_grace_runs_out) {
    session_broker b(make_limits(1, 10, 3600s, {}, 60s, 20s));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.join("q1", nullptr, t0);
    b.join("q2", nullptr, t0);
    b.channel_opened("q2", t0);
    b.leave("a", t0 + 10s);
    b.take_events();
    b.advance(t0 + 30s);
    const auto events = b.take_events();
    EXPECT_EQ(ends(b, events), (std::vector<end_record>{{"q1", end_reason::abandoned, true}}));
    EXPECT_EQ(admitted(b, events), (std::vector<std::string>{"q2"}));
}

// --- warnings -------------------------------------------------------------------------------

struct warning_case {
    const char* name;
    seconds duration;
    std::vector<seconds> warnings;
    std::vector<seconds> expected;  // seconds_left of each warning, in the order they must come
};

std::ostream& operator<<(std::ostream& os, const warning_case& c) { return os << c.name; }

class session_broker_warnings : public ::testing::TestWithParam<warning_case> {};

TEST_P(session_broker_warnings, each_warning_comes_once_at_its_instant_then_the_session_expires) {
    const auto& c = GetParam();
    session_broker b(make_limits(1, 10, c.duration, c.warnings));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);  // alive throughout: only the clock matters
    b.take_events();

    std::vector<std::pair<seconds, seconds>> got;  // (at, seconds_left)
    std::vector<end_record> ended;
    for (const auto& [at, ev, ticket] : run_until(b, t0 + c.duration + 1h)) {
        const auto offset = std::chrono::duration_cast<seconds>(at - t0);
        ASSERT_EQ(at, t0 + offset) << "events happen at whole seconds here";
        if (ev.what == kind::warning) {
            EXPECT_TRUE(ended.empty()) << "a warning after the end";
            got.emplace_back(offset, ev.seconds_left);
        } else if (ev.what == kind::ended) {
            EXPECT_EQ(offset, c.duration);
            ended.push_back({ticket, ev.reason, ev.was_active});
        } else {
            ADD_FAILURE() << "unexpected event kind " << static_cast<int>(ev.what);
        }
    }
    std::vector<std::pair<seconds, seconds>> want;
    for (auto left : c.expected) want.emplace_back(c.duration - left, left);
    EXPECT_EQ(got, want);
    EXPECT_EQ(ended, (std::vector<end_record>{{"a", end_reason::expired, true}}));
}

INSTANTIATE_TEST_SUITE_P(
    durations_and_lists, session_broker_warnings,
    ::testing::Values(
        warning_case{"five_minutes_default", 300s, {180s, 120s, 60s}, {180s, 120s, 60s}},
        warning_case{"ninety_seconds_skips_longer_offsets", 90s, {180s, 120s, 60s}, {60s}},
        warning_case{"offset_equal_to_the_session_is_skipped", 60s, {60s, 30s}, {30s}},
        warning_case{"every_offset_too_long", 30s, {180s, 120s, 60s}, {}},
        warning_case{"no_warnings", 10s, {}, {}},
        warning_case{"unsorted_with_duplicates", 600s, {60s, 300s, 120s, 300s}, {300s, 120s, 60s}},
        warning_case{"seconds_scale", 5s, {3s, 2s, 1s}, {3s, 2s, 1s}},
        warning_case{"zero_offset_ignored", 10s, {0s, 1s}, {1s}},
        warning_case{"one_second_session", 1s, {1s}, {}},
        warning_case{"long_session", 3600s, {1800s, 600s, 1s}, {1800s, 600s, 1s}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(session_broker_warnings_timing, nothing_is_due_a_millisecond_before_a_warning) {
    session_broker b(make_limits(1, 10, 300s, {180s, 120s, 60s}));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.take_events();
    EXPECT_EQ(b.next_deadline(), t0 + 120s);
    b.advance(t0 + 120s - 1ms);
    EXPECT_TRUE(b.take_events().empty());
    b.advance(t0 + 120s);
    const auto events = b.take_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].what, kind::warning);
    EXPECT_EQ(ticket_of(b, events[0]), "a");
    EXPECT_EQ(events[0].seconds_left, 180s);
    EXPECT_EQ(b.next_deadline(), t0 + 180s);
}

TEST(session_broker_warnings_timing, a_late_advance_delivers_every_missed_warning_once_in_order) {
    session_broker b(make_limits(1, 10, 300s, {180s, 120s, 60s}));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.take_events();

    b.advance(t0 + 250s);  // past all three warnings, before the end
    auto events = b.take_events();
    ASSERT_EQ(events.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(events[i].what, kind::warning);
    EXPECT_EQ(events[0].seconds_left, 180s);
    EXPECT_EQ(events[1].seconds_left, 120s);
    EXPECT_EQ(events[2].seconds_left, 60s);

    b.advance(t0 + 250s);
    b.advance(t0 + 299s);
    EXPECT_TRUE(b.take_events().empty()) << "no warning twice";
    EXPECT_EQ(b.next_deadline(), t0 + 300s);
    b.advance(t0 + 300s);
    EXPECT_EQ(ends(b, b.take_events()), (std::vector<end_record>{{"a", end_reason::expired, true}}));
}

TEST(session_broker_warnings_timing, a_late_advance_past_some_warnings_leaves_the_rest_for_later) {
    session_broker b(make_limits(1, 10, 300s, {180s, 120s, 60s}));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.take_events();

    b.advance(t0 + 190s);
    auto events = b.take_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].seconds_left, 180s);
    EXPECT_EQ(events[1].seconds_left, 120s);
    EXPECT_EQ(b.next_deadline(), t0 + 240s);
    b.advance(t0 + 240s);
    events = b.take_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].seconds_left, 60s);
}

TEST(session_broker_warnings_timing, an_advance_past_the_end_ends_once_and_warns_no_more) {
    session_broker b(make_limits(1, 10, 300s, {180s, 120s, 60s}));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.take_events();

    b.advance(t0 + 1000s);
    const auto events = b.take_events();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().what, kind::ended) << "nothing may follow the end";
    EXPECT_EQ(ends(b, events), (std::vector<end_record>{{"a", end_reason::expired, true}}));
    b.advance(t0 + 2000s);
    EXPECT_TRUE(b.take_events().empty());
}

TEST(session_broker_warnings_timing, each_session_gets_its_own_warnings) {
    session_broker b(make_limits(1, 10, 100s, {30s}));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.join("b", nullptr, t0);
    b.channel_opened("b", t0);
    b.take_events();

    std::vector<std::pair<std::string, seconds>> warnings;  // (ticket, offset from t0)
    for (const auto& [at, ev, ticket] : run_until(b, t0 + 300s)) {
        if (ev.what == kind::warning) warnings.emplace_back(ticket, std::chrono::duration_cast<seconds>(at - t0));
    }
    EXPECT_EQ(warnings, (std::vector<std::pair<std::string, seconds>>{{"a", 70s}, {"b", 170s}}));
}

// --- ETA --------------------------------------------------------------------------------------

TEST(session_broker_eta, assumes_every_holder_and_everyone_ahead_uses_a_whole_session) {
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    for (const char* t : {"a", "q1", "q2", "q3"}) b.join(t, nullptr, t0);
    EXPECT_EQ(b.status("q1", t0)->eta_seconds, 300);
    EXPECT_EQ(b.status("q2", t0)->eta_seconds, 600);
    EXPECT_EQ(b.status("q3", t0)->eta_seconds, 900);
    EXPECT_EQ(b.status("q1", t0 + 100s)->eta_seconds, 200);
    EXPECT_EQ(b.status("q3", t0 + 100s)->eta_seconds, 800);
    EXPECT_EQ(b.status("q1", t0 + 100s + 1ms)->eta_seconds, 200) << "rounded up to whole seconds";
    EXPECT_EQ(b.status("q1", t0 + 100s - 1ms)->eta_seconds, 201);
}

TEST(session_broker_eta, uses_the_earliest_free_slot_with_several_slots) {
    session_broker b(make_limits(2, 10, 300s, {}, 3600s));
    b.join("a", nullptr, t0);
    b.join("b", nullptr, t0 + 100s);
    for (const char* t : {"q1", "q2", "q3"}) b.join(t, nullptr, t0 + 100s);
    EXPECT_EQ(b.status("q1", t0 + 100s)->eta_seconds, 200);  // a's slot
    EXPECT_EQ(b.status("q2", t0 + 100s)->eta_seconds, 300);  // b's slot
    EXPECT_EQ(b.status("q3", t0 + 100s)->eta_seconds, 500);  // a's slot again, after q1
}

TEST(session_broker_eta, is_zero_for_nobody_and_not_shown_to_holders) {
    session_broker b(make_limits(1, 10, 300s));
    const auto a = b.join("a", nullptr, t0);
    EXPECT_EQ(a.status.eta_seconds, 0);
    EXPECT_EQ(a.status.position, 0u);
}

TEST(session_broker_eta, after_slots_were_lowered_counts_the_extra_holders_finishing_first) {
    session_broker b(make_limits(3, 10, 300s, {}, 3600s));
    b.join("a", nullptr, t0);
    b.join("b", nullptr, t0 + 10s);
    b.join("c", nullptr, t0 + 20s);
    b.reload(make_limits(1, 10, 300s, {}, 3600s), t0 + 20s);
    b.join("q1", nullptr, t0 + 20s);
    b.join("q2", nullptr, t0 + 20s);
    // q1 gets in only when all three are gone (c ends at t0 + 320 s); q2 one session later.
    EXPECT_EQ(b.status("q1", t0 + 20s)->eta_seconds, 300);
    EXPECT_EQ(b.status("q2", t0 + 20s)->eta_seconds, 600);
}

// Walks a busy scenario in 7-second steps, with people leaving now and then, and checks that
// every queued visitor's ETA never grows and that each one is admitted no later than any ETA it
// was ever shown promised.
TEST(session_broker_eta, never_grows_and_bounds_the_real_admission_time) {
    session_broker b(make_limits(2, 20, 60s, {}, 3600s));
    for (int i = 0; i < 12; ++i) {
        const auto ticket = "v" + std::to_string(i);
        b.join(ticket, nullptr, t0 + seconds{i});
        b.channel_opened(ticket, t0 + seconds{i});  // everyone stays and confirms
    }
    b.take_events();

    std::map<std::string, std::int64_t> last_eta;
    std::map<std::string, steady_time> promised;  // the earliest "now + eta" ever shown
    std::map<std::string, steady_time> admitted_at;
    auto note_admissions = [&](steady_time at, const std::vector<broker_event>& events) {
        for (const auto& ev : events) {
            if (ev.what != kind::admitted) continue;
            admitted_at[ticket_of(b, ev)] = at;
            ASSERT_TRUE(promised.count(ticket_of(b, ev))) << ticket_of(b, ev) << " was admitted without ever being queued";
            EXPECT_LE(at, promised[ticket_of(b, ev)]) << ticket_of(b, ev) << " was admitted later than promised";
        }
    };
    for (auto now = t0 + 12s; now <= t0 + 900s; now += 7s) {
        for (const auto& [at, ev, ticket] : run_until(b, now)) note_admissions(at, {ev});
        // Some visitors leave early, which may only bring the others forward.
        if (now == t0 + 82s) b.leave("v5", now);
        if (now == t0 + 103s) b.leave("v2", now);  // a holder leaves early
        if (now == t0 + 166s) b.leave("v9", now);
        note_admissions(now, b.take_events());
        for (const auto& s : b.queued_statuses(now)) {
            if (last_eta.count(s.ticket)) {
                EXPECT_LE(s.eta_seconds, last_eta[s.ticket]) << s.ticket << " at +" << (now - t0) / 1s << " s";
            }
            last_eta[s.ticket] = s.eta_seconds;
            const auto bound = now + seconds{s.eta_seconds};
            if (!promised.count(s.ticket) || bound < promised[s.ticket]) promised[s.ticket] = bound;
        }
    }
    // v0 and v1 were admitted at join, the other ten waited; v5 and v9 left while waiting.
    EXPECT_EQ(admitted_at.size(), 8u);
    EXPECT_EQ(b.queue_length(), 0u);
}

// Real clocks tick in nanoseconds: with 1.0005 s left, "1 s" would break the upper bound.
TEST(session_broker_eta, is_rounded_up_even_below_a_millisecond) {
    session_broker b(make_limits(1, 10, 60s, {}, 3600s));
    b.join("a", nullptr, t0);
    b.join("q", nullptr, t0);
    const auto now = t0 + 60s - 1000500us;  // 1.0005 s before a's session ends
    EXPECT_EQ(b.status("q", now)->eta_seconds, 2) << "the wait is longer than 1 s";
    EXPECT_EQ(b.status("a", now)->remaining_seconds, 2);
}

// --- reload -----------------------------------------------------------------------------------

TEST(session_broker_reload, more_slots_admit_waiting_visitors_in_order_at_once) {
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    for (const char* t : {"a", "q1", "q2", "q3"}) b.join(t, nullptr, t0);
    b.take_events();
    b.reload(make_limits(3, 10, 300s, {}, 3600s), t0 + 5s);
    const auto events = b.take_events();
    EXPECT_EQ(admitted(b, events), (std::vector<std::string>{"q1", "q2"}));
    EXPECT_TRUE(has_queue_changed(events));
    EXPECT_EQ(b.active_count(), 3u);
    EXPECT_EQ(b.status("q3", t0 + 5s)->position, 1u);
}

TEST(session_broker_reload, fewer_slots_let_current_sessions_finish_and_admit_nobody_until_below) {
    session_broker b(make_limits(3, 10, 300s, {}, 3600s));
    for (const char* t : {"a", "b", "c", "q1"}) b.join(t, nullptr, t0);
    b.take_events();
    b.reload(make_limits(1, 10, 300s, {}, 3600s), t0 + 5s);
    auto events = b.take_events();
    EXPECT_TRUE(ends(b, events).empty()) << "nobody is cut off";
    EXPECT_TRUE(admitted(b, events).empty());
    EXPECT_EQ(b.active_count(), 3u);

    b.leave("a", t0 + 10s);
    EXPECT_TRUE(admitted(b, b.take_events()).empty()) << "two still hold slots, the limit is one";
    b.leave("b", t0 + 11s);
    EXPECT_TRUE(admitted(b, b.take_events()).empty()) << "one still holds the only slot";
    EXPECT_EQ(join_kind(b, "q2", t0 + 12s), join_outcome::kind::joined);
    EXPECT_EQ(state_of(b, "q2", t0 + 12s), entry_state::queued);
    b.leave("c", t0 + 13s);
    EXPECT_EQ(admitted(b, b.take_events()), (std::vector<std::string>{"q1"}));
    EXPECT_EQ(state_of(b, "q2", t0 + 13s), entry_state::queued);
}

TEST(session_broker_reload, current_sessions_keep_their_deadlines_and_warnings) {
    session_broker b(make_limits(1, 10, 300s, {60s}, 3600s));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.join("q", nullptr, t0);
    b.channel_opened("q", t0);
    b.take_events();
    b.reload(make_limits(1, 10, 100s, {30s}, 3600s), t0 + 10s);
    EXPECT_EQ(b.status("a", t0 + 10s)->expires_at, t0 + 300s);

    std::vector<std::tuple<std::string, seconds, kind, seconds>> got;  // ticket, at, what, seconds_left
    for (const auto& [at, ev, ticket] : run_until(b, t0 + 1000s)) {
        if (ev.what == kind::queue_changed) continue;
        got.emplace_back(ticket, std::chrono::duration_cast<seconds>(at - t0), ev.what, ev.seconds_left);
    }
    const std::vector<std::tuple<std::string, seconds, kind, seconds>> want = {
        {"a", 240s, kind::warning, 60s},  {"a", 300s, kind::ended, 0s},
        {"q", 300s, kind::admitted, 0s}, {"q", 370s, kind::warning, 30s},
        {"q", 400s, kind::ended, 0s},
    };
    EXPECT_EQ(got, want) << "the old session runs by the old rules, the next by the new";
}

TEST(session_broker_reload, a_shorter_heartbeat_timeout_applies_to_everyone_at_once) {
    session_broker b(make_limits(1, 10, 3600s, {}, 60s));
    b.join("a", nullptr, t0);
    b.channel_opened("a", t0);
    b.join("q", nullptr, t0);
    b.take_events();
    b.reload(make_limits(1, 10, 3600s, {}, 30s), t0 + 40s);  // q has been silent for 40 s
    EXPECT_EQ(ends(b, b.take_events()), (std::vector<end_record>{{"q", end_reason::abandoned, false}}));
}

TEST(session_broker_reload, a_smaller_queue_keeps_who_waits_and_refuses_newcomers) {
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    for (const char* t : {"a", "q1", "q2", "q3"}) b.join(t, nullptr, t0);
    b.reload(make_limits(1, 1, 300s, {}, 3600s), t0 + 1s);
    EXPECT_EQ(b.queue_length(), 3u);
    EXPECT_EQ(join_kind(b, "q4", t0 + 2s), join_outcome::kind::queue_full);
}

// --- tokens -----------------------------------------------------------------------------------

TEST(session_broker_tokens, only_a_holder_gets_at_most_n_per_session) {
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    b.join("a", nullptr, t0);
    b.join("q", nullptr, t0);
    using r = session_broker::token_reservation;
    EXPECT_EQ(b.reserve_token("q", 3, t0), r::not_active);
    EXPECT_EQ(b.reserve_token("nobody", 3, t0), r::not_active);
    EXPECT_EQ(b.reserve_token("a", 3, t0), r::reserved);
    EXPECT_EQ(b.reserve_token("a", 3, t0 + 1s), r::reserved);
    EXPECT_EQ(b.reserve_token("a", 3, t0 + 2s), r::reserved);
    EXPECT_EQ(b.reserve_token("a", 3, t0 + 3s), r::limit_reached);
    EXPECT_EQ(b.reserve_token("a", 4, t0 + 4s), r::reserved) << "three were used: a higher limit allows one more";

    b.leave("a", t0 + 4s);
    EXPECT_EQ(b.reserve_token("a", 3, t0 + 4s), r::not_active);
    EXPECT_EQ(b.reserve_token("q", 3, t0 + 4s), r::reserved) << "q holds the slot now";
}

TEST(session_broker_tokens, not_at_or_after_the_end_even_before_advance_ran) {
    session_broker b(make_limits(1, 10, 60s, {}, 3600s));
    b.join("a", nullptr, t0);
    using r = session_broker::token_reservation;
    EXPECT_EQ(b.reserve_token("a", 3, t0 + 60s), r::not_active);
    EXPECT_EQ(b.reserve_token("a", 3, t0 + 60s - 1ms), r::reserved);
}

// --- ended entries and deadlines ----------------------------------------------------------------

TEST(session_broker_ended, the_cap_on_remembered_ends_holds_at_every_end) {
    // Issue 15: join+leave cycles in a burst must not grow the broker until its next deadline.
    session_broker b(make_limits(1, 10, 300s, {}, 3600s));
    b.join("holder", nullptr, t0);
    for (int i = 0; i < 25000; ++i) {
        const auto t = "t" + std::to_string(i);
        b.join(t, nullptr, t0);
        b.leave(t, t0);
    }
    EXPECT_LE(b.remembered(), max_ended_entries + 1);
    EXPECT_TRUE(b.status("t24999", t0).has_value()) << "the newest ends are the ones kept";
    EXPECT_FALSE(b.status("t0", t0).has_value());
    EXPECT_EQ(b.status("holder", t0)->state, entry_state::active);
}

TEST(session_broker_retention, ended_entries_answer_for_ten_minutes_then_are_forgotten) {
    session_broker b(make_limits(1, 10, 300s));
    b.join("a", nullptr, t0);
    b.leave("a", t0 + 5s);
    b.take_events();
    EXPECT_EQ(b.next_deadline(), t0 + 5s + ended_entry_retention);

    b.advance(t0 + 5s + ended_entry_retention - 1ms);
    ASSERT_TRUE(b.status("a", t0 + 5s + ended_entry_retention - 1ms));
    EXPECT_EQ(b.status("a", t0 + 5s + ended_entry_retention - 1ms)->reason, end_reason::left);

    b.advance(t0 + 5s + ended_entry_retention);
    EXPECT_FALSE(b.status("a", t0 + 5s + ended_entry_retention).has_value());
    EXPECT_FALSE(b.next_deadline().has_value());
    EXPECT_TRUE(b.take_events().empty());
}

TEST(session_broker_retention, at_most_max_ended_entries_are_kept_oldest_forgotten_first) {
    session_broker b(make_limits(1, 10, 300s));
    for (std::size_t i = 0; i <= max_ended_entries; ++i) {
        const auto t = "v" + std::to_string(i);
        b.join(t, nullptr, t0);
        b.leave(t, t0);
    }
    b.take_events();
    b.advance(t0 + 1s);
    EXPECT_FALSE(b.status("v0", t0 + 1s).has_value());
    EXPECT_TRUE(b.status("v1", t0 + 1s).has_value());
    EXPECT_TRUE(b.status("v" + std::to_string(max_ended_entries), t0 + 1s).has_value());
}

TEST(session_broker_deadlines, an_empty_broker_has_nothing_to_do) {
    session_broker b(make_limits(1, 10, 300s));
    EXPECT_FALSE(b.next_deadline().has_value());
    b.advance(t0);
    EXPECT_TRUE(b.take_events().empty());
}

TEST(session_broker_deadlines, the_next_deadline_is_the_earliest_of_every_kind) {
    session_broker b(make_limits(1, 10, 300s, {180s}, 30s, 20s));
    b.join("a", nullptr, t0);
    EXPECT_EQ(b.next_deadline(), t0 + 30s) << "heartbeat timeout";
    b.channel_opened("a", t0);
    EXPECT_EQ(b.next_deadline(), t0 + 120s) << "the warning";
    b.join("q", nullptr, t0 + 100s);
    EXPECT_EQ(b.next_deadline(), t0 + 120s);
    b.heartbeat("q", t0 + 115s);
    b.advance(t0 + 120s);
    EXPECT_EQ(b.next_deadline(), t0 + 145s) << "q's heartbeat timeout comes before a's end";
    b.channel_opened("q", t0 + 120s);
    EXPECT_EQ(b.next_deadline(), t0 + 300s) << "a's end";
    b.advance(t0 + 300s);
    EXPECT_EQ(state_of(b, "q", t0 + 300s), entry_state::active);
    // q was admitted with its channel open, so no grace deadline: its warning is next.
    EXPECT_EQ(b.next_deadline(), t0 + 300s + 120s);
}

TEST(session_broker_events, take_events_empties_the_outbox) {
    session_broker b(make_limits(1, 10, 300s));
    b.join("a", nullptr, t0);
    EXPECT_EQ(b.take_events().size(), 1u);
    EXPECT_TRUE(b.take_events().empty());
}

TEST(session_broker_events, appending_to_the_queue_moves_nobody) {
    session_broker b(make_limits(1, 10, 300s));
    b.join("a", nullptr, t0);
    b.join("q1", nullptr, t0);
    b.take_events();
    b.join("q2", nullptr, t0);
    EXPECT_TRUE(b.take_events().empty());
}

TEST(session_broker_names, every_state_and_reason_has_its_api_name) {
    EXPECT_EQ(to_string(entry_state::active), "active");
    EXPECT_EQ(to_string(entry_state::queued), "queued");
    EXPECT_EQ(to_string(entry_state::ended), "ended");
    EXPECT_EQ(to_string(end_reason::expired), "expired");
    EXPECT_EQ(to_string(end_reason::left), "left");
    EXPECT_EQ(to_string(end_reason::forced), "forced");
    EXPECT_EQ(to_string(end_reason::abandoned), "abandoned");
    EXPECT_EQ(to_string(end_reason::shutdown), "shutdown");
}

}  // namespace
}  // namespace voice_broker
