// redis_connection against a real redis-server: replies of every type, AUTH and SELECT, deadlines
// against a paused server, kill -9 and restart, close and destruction.  Every handler must run
// exactly once.
#include "redis_test_loop.hpp"
#include "redis_test_server.hpp"
#include "voice_broker/redis_connection.hpp"
#include "voice_broker/redis_error.hpp"
#include "voice_broker/redis_probe.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <cstdio>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;
using testing::command_outcome;
using testing::redis_server_options;
using testing::redis_test_loop;
using testing::redis_test_server;
using testing::run_command;
using testing::send_command;
using testing::state_log;

redis_client_options options_for(const redis_url& url) {
    redis_client_options options;
    options.url = url;
    options.client_name = "vb-test";
    options.connect_timeout = 500ms;
    options.reconnect_delay_min = 20ms;
    options.reconnect_delay_max = 200ms;
    return options;
}

redis_server_options with_password(std::string password) {
    redis_server_options options;
    options.password = std::move(password);
    return options;
}

double ms_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

class redis_connection_test : public ::testing::Test {
protected:
    std::shared_ptr<redis_connection> connect(const redis_url& url) { return connect(options_for(url)); }

    std::shared_ptr<redis_connection> connect(redis_client_options options) {
        auto connection = redis_connection::create(loop.executor(), std::move(options));
        connection->add_state_observer([this](redis_link_state state) { states.states.push_back(state); });
        connection->start();
        return connection;
    }

    bool wait_state(redis_link_state state, std::chrono::milliseconds timeout, int occurrence = 1) {
        return loop.run_until([&] { return states.count(state) >= occurrence; }, timeout);
    }

    redis_test_loop loop;
    state_log states;
};

TEST_F(redis_connection_test, replies_of_every_type_over_a_unix_socket) {
    redis_server_options options;
    options.unix_socket = true;
    redis_test_server server(options);
    auto connection = connect(server.url());
    ASSERT_TRUE(wait_state(redis_link_state::up, 3s)) << connection->last_error();
    EXPECT_EQ(connection->connected_endpoint()->socket_path, server.socket_path());

    EXPECT_EQ(run_command(loop, *connection, {"SET", "k", "v"}).reply, redis_reply::make_status("OK"));
    EXPECT_EQ(run_command(loop, *connection, {"GET", "k"}).reply, redis_reply::make_string("v"));
    EXPECT_EQ(run_command(loop, *connection, {"GET", "missing"}).reply, redis_reply::nil());
    EXPECT_EQ(run_command(loop, *connection, {"INCRBY", "n", "41"}).reply, redis_reply::make_integer(41));
    EXPECT_EQ(run_command(loop, *connection, {"INCR", "n"}).reply, redis_reply::make_integer(42));
    run_command(loop, *connection, {"RPUSH", "list", "a", "b"});
    EXPECT_EQ(run_command(loop, *connection, {"LRANGE", "list", "0", "-1"}).reply,
              redis_reply::make_array({redis_reply::make_string("a"), redis_reply::make_string("b")}));
    // Nested arrays, negative integers and nil inside an array, from a script.
    const auto nested = run_command(loop, *connection, {"EVAL", "return {1, {-2, 'x'}, false}", "0"});
    EXPECT_EQ(nested.reply,
              redis_reply::make_array({redis_reply::make_integer(1),
                                       redis_reply::make_array({redis_reply::make_integer(-2),
                                                                redis_reply::make_string("x")}),
                                       redis_reply::nil()}));
    // An error reply is a reply, not a failure.
    const auto wrong = run_command(loop, *connection, {"INCR", "k"});
    EXPECT_FALSE(wrong.error);
    EXPECT_TRUE(wrong.reply.is_error("ERR")) << wrong.reply.describe();
    const auto wrongtype = run_command(loop, *connection, {"LPUSH", "k", "x"});
    EXPECT_TRUE(wrongtype.reply.is_error("WRONGTYPE")) << wrongtype.reply.describe();
    // Binary-safe arguments and a 1 MB value.
    const std::string binary("a\0b\r\nc", 6);
    run_command(loop, *connection, {"SET", binary, binary});
    EXPECT_EQ(run_command(loop, *connection, {"GET", binary}).reply, redis_reply::make_string(binary));
    const std::string big(1 << 20, 'z');
    run_command(loop, *connection, {"SET", "big", big});
    EXPECT_EQ(run_command(loop, *connection, {"GET", "big"}).reply.text.size(), big.size());
    EXPECT_NE(server.command({"CLIENT", "LIST"}).text.find("name=vb-test"), std::string::npos);
    EXPECT_EQ(run_command(loop, *connection, {}).error, redis_error::empty_command);
    EXPECT_EQ(run_command(loop, *connection, {"PING"}).reply, redis_reply::make_status("PONG"));
}

TEST_F(redis_connection_test, pipelined_commands_answer_in_order_exactly_once) {
    redis_test_server server;
    auto connection = connect(server.url());
    std::vector<std::shared_ptr<command_outcome>> outcomes;
    // Issued before the connection is up: they wait in the queue, then go in order.
    for (int i = 0; i < 2000; ++i) outcomes.push_back(send_command(*connection, {"INCR", "counter"}, 5s));
    ASSERT_TRUE(loop.run_until([&] { return outcomes.back()->done(); }, 10s));
    loop.drain();
    for (int i = 0; i < 2000; ++i) {
        ASSERT_EQ(outcomes[i]->calls, 1);
        ASSERT_FALSE(outcomes[i]->error) << outcomes[i]->error.message();
        ASSERT_EQ(outcomes[i]->reply, redis_reply::make_integer(i + 1));
    }
    EXPECT_EQ(connection->pending_commands(), 0u);
}

TEST_F(redis_connection_test, select_picks_the_database_from_the_url) {
    redis_test_server server;
    auto connection = connect(server.url(3));
    ASSERT_FALSE(run_command(loop, *connection, {"SET", "where", "three"}).error);
    EXPECT_EQ(server.command({"GET", "where"}).type, redis_reply_type::nil);  // db 0
    auto in_three = redis_connection::create(loop.executor(), options_for(server.url(3)));
    in_three->start();
    EXPECT_EQ(run_command(loop, *in_three, {"GET", "where"}).reply, redis_reply::make_string("three"));
    auto out_of_range = connect(server.url(99));
    ASSERT_TRUE(wait_state(redis_link_state::down, 3s));
    EXPECT_NE(out_of_range->last_error().find("SELECT 99 failed"), std::string::npos) << out_of_range->last_error();
}

TEST_F(redis_connection_test, hostname_is_resolved_without_blocking) {
    redis_test_server server;
    auto url = server.url();
    url.endpoint.host = "localhost";
    auto connection = connect(url);
    const auto pong = run_command(loop, *connection, {"PING"});
    EXPECT_EQ(pong.reply, redis_reply::make_status("PONG")) << connection->last_error();
}

TEST_F(redis_connection_test, auth_with_password_and_with_user_password) {
    redis_test_server server(with_password("s3cret-pw"));
    auto connection = connect(server.url());
    EXPECT_EQ(run_command(loop, *connection, {"PING"}).reply, redis_reply::make_status("PONG"));

    server.command({"ACL", "SETUSER", "app", "on", ">app-pw", "~*", "+@all"});
    auto url = server.url();
    url.username = "app";
    url.password = "app-pw";
    auto as_user = redis_connection::create(loop.executor(), options_for(url));
    as_user->start();
    EXPECT_EQ(run_command(loop, *as_user, {"ACL", "WHOAMI"}).reply, redis_reply::make_string("app"));
}

TEST_F(redis_connection_test, a_wrong_or_missing_password_is_reported_and_never_shown) {
    redis_test_server server(with_password("s3cret-pw"));
    auto url = server.url();
    url.password = "wrong-pw";
    auto connection = connect(url);
    const auto outcome = send_command(*connection, {"PING"}, 300ms);
    ASSERT_TRUE(wait_state(redis_link_state::down, 3s));
    EXPECT_NE(connection->last_error().find("AUTH failed"), std::string::npos) << connection->last_error();
    EXPECT_EQ(connection->last_error().find("wrong-pw"), std::string::npos);
    // The command never went out: not_connected, at its deadline.
    ASSERT_TRUE(loop.run_until([&] { return outcome->done(); }, 3s));
    EXPECT_EQ(outcome->error, redis_error::not_connected);

    auto plain = server.url();
    plain.password.clear();
    auto no_password = redis_connection::create(loop.executor(), options_for(plain));
    no_password->start();
    ASSERT_TRUE(loop.run_until([&] { return no_password->state() == redis_link_state::down; }, 3s));
    EXPECT_NE(no_password->last_error().find("requires a password"), std::string::npos) << no_password->last_error();
}

TEST_F(redis_connection_test, a_paused_redis_fails_commands_at_their_deadline_and_recovers) {
    redis_test_server server;
    auto connection = connect(server.url());
    ASSERT_TRUE(wait_state(redis_link_state::up, 3s));

    server.pause();
    const auto sent_at = std::chrono::steady_clock::now();
    const auto stalled = send_command(*connection, {"SET", "a", "1"}, 200ms);
    const auto behind = send_command(*connection, {"SET", "b", "1"}, 2000ms);
    ASSERT_TRUE(loop.run_until([&] { return stalled->done(); }, 2s));
    EXPECT_EQ(stalled->error, redis_error::timeout);
    const double waited = ms_between(sent_at, stalled->answered_at);
    EXPECT_GE(waited, 195.0);
    EXPECT_LT(waited, 400.0);
    std::printf("[ measure ] deadline of 200 ms fired after %.1f ms against a paused redis\n", waited);
    // The connection was dropped: the other command in flight fails at once, the state says so.
    ASSERT_TRUE(loop.run_until([&] { return behind->done(); }, 1s));
    EXPECT_EQ(behind->error, redis_error::connection_lost);
    ASSERT_TRUE(wait_state(redis_link_state::down, 1s));
    EXPECT_LT(ms_between(sent_at, behind->answered_at), 450.0);

    // While paused, reconnects cannot finish their handshake: commands wait, then fail unsent.
    const auto while_paused = send_command(*connection, {"GET", "a"}, 300ms);
    ASSERT_TRUE(loop.run_until([&] { return while_paused->done(); }, 2s));
    EXPECT_EQ(while_paused->error, redis_error::not_connected);

    const auto queued = send_command(*connection, {"INCR", "after"}, 5s);
    server.resume();
    const auto resumed_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_state(redis_link_state::up, 5s, 2)) << connection->last_error();
    ASSERT_TRUE(loop.run_until([&] { return queued->done(); }, 5s));
    EXPECT_FALSE(queued->error) << queued->error.message();
    EXPECT_EQ(queued->reply, redis_reply::make_integer(1));
    std::printf("[ measure ] up again %.1f ms after SIGCONT\n", ms_between(resumed_at, std::chrono::steady_clock::now()));
    loop.drain();
    for (const auto& outcome : {stalled, behind, while_paused, queued}) EXPECT_EQ(outcome->calls, 1);
}

TEST_F(redis_connection_test, kill_9_and_restart_reconnects_and_loses_no_handler) {
    redis_test_server server;
    auto options = options_for(server.url());
    options.reconnect_delay_max = 300ms;
    auto connection = connect(options);
    ASSERT_TRUE(wait_state(redis_link_state::up, 3s));

    std::vector<std::shared_ptr<command_outcome>> before;
    for (int i = 0; i < 200; ++i) before.push_back(send_command(*connection, {"INCR", "n"}, 3s));
    server.kill();
    const auto killed_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_state(redis_link_state::down, 3s));
    std::printf("[ measure ] down reported %.1f ms after kill -9\n", ms_between(killed_at, std::chrono::steady_clock::now()));
    ASSERT_TRUE(loop.run_until([&] { return before.back()->done(); }, 5s));
    int answered = 0, lost = 0;
    for (const auto& outcome : before) {
        if (!outcome->error) ++answered;
        else if (outcome->error == redis_error::connection_lost) ++lost;
        else ADD_FAILURE() << outcome->error.message();
    }
    EXPECT_EQ(answered + lost, 200);

    // Issued while Redis is gone: they wait for the new connection.
    std::vector<std::shared_ptr<command_outcome>> during;
    for (int i = 0; i < 50; ++i) during.push_back(send_command(*connection, {"INCR", "m"}, 10s));
    // Let the back-off grow to its cap before Redis returns: the real time it takes to notice
    // the restart is then bounded by reconnect_delay_max.
    ASSERT_FALSE(loop.run_until([&] { return connection->is_up(); }, 1s));
    server.restart();
    const auto restarted_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_state(redis_link_state::up, 5s, 2)) << connection->last_error();
    const double reconnect_ms = ms_between(restarted_at, std::chrono::steady_clock::now());
    std::printf("[ measure ] up %.1f ms after the restarted redis said READY (back-off cap 300 ms)\n", reconnect_ms);
    EXPECT_LT(reconnect_ms, 300.0 + 150.0);
    ASSERT_TRUE(loop.run_until([&] { return during.back()->done(); }, 5s));
    loop.drain();
    for (int i = 0; i < 50; ++i) {
        ASSERT_EQ(during[i]->calls, 1);
        ASSERT_FALSE(during[i]->error) << during[i]->error.message();
        EXPECT_EQ(during[i]->reply, redis_reply::make_integer(i + 1));  // in order, none twice
    }
    for (const auto& outcome : before) EXPECT_EQ(outcome->calls, 1);
}

TEST_F(redis_connection_test, close_and_destruction_answer_every_pending_command_once) {
    redis_test_server server;
    auto connection = connect(server.url());
    ASSERT_TRUE(wait_state(redis_link_state::up, 3s));
    server.pause();
    std::vector<std::shared_ptr<command_outcome>> outcomes;
    for (int i = 0; i < 10; ++i) outcomes.push_back(send_command(*connection, {"PING"}, 5s));
    connection.reset();  // destroyed with commands in flight
    ASSERT_TRUE(loop.run_until([&] { return outcomes.back()->done(); }, 1s));
    loop.drain();
    for (const auto& outcome : outcomes) {
        EXPECT_EQ(outcome->calls, 1);
        EXPECT_EQ(outcome->error, redis_error::closed);
    }
    server.resume();

    // Never connected at all, then closed; and a command after close().
    redis_client_options nowhere = options_for(server.url());
    nowhere.url.endpoint = redis_endpoint{{}, 0, (server.dir() / "no-such.sock").string()};
    auto unreachable = redis_connection::create(loop.executor(), nowhere);
    unreachable->start();
    const auto queued = send_command(*unreachable, {"PING"}, 5s);
    unreachable->close();
    const auto after_close = send_command(*unreachable, {"PING"}, 5s);
    ASSERT_TRUE(loop.run_until([&] { return queued->done() && after_close->done(); }, 1s));
    EXPECT_EQ(queued->error, redis_error::closed);
    EXPECT_EQ(after_close->error, redis_error::closed);
    EXPECT_EQ(unreachable->state(), redis_link_state::closed);
    EXPECT_NE(unreachable->last_error().find("no-such.sock"), std::string::npos) << unreachable->last_error();
}

TEST_F(redis_connection_test, a_full_queue_refuses_at_once) {
    redis_test_server server;
    auto options = options_for(server.url());
    options.max_pending_commands = 3;
    auto connection = connect(options);
    std::vector<std::shared_ptr<command_outcome>> outcomes;
    for (int i = 0; i < 4; ++i) outcomes.push_back(send_command(*connection, {"PING"}, 2s));
    ASSERT_TRUE(loop.run_until([&] { return outcomes[3]->done(); }, 1s));
    EXPECT_EQ(outcomes[3]->error, redis_error::queue_full);
    ASSERT_TRUE(loop.run_until([&] { return outcomes[2]->done(); }, 3s));
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(outcomes[i]->error) << outcomes[i]->error.message();
}

TEST_F(redis_connection_test, a_server_paused_from_the_start_fails_the_connect_deadline) {
    redis_test_server server;
    server.pause();
    auto connection = connect(server.url());
    const auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_state(redis_link_state::down, 3s));
    EXPECT_GE(ms_between(started, std::chrono::steady_clock::now()), 450.0);  // connect_timeout 500 ms
    EXPECT_NE(connection->last_error().find("did not complete connect and handshake within 500 ms"), std::string::npos)
        << connection->last_error();
    server.resume();
    ASSERT_TRUE(wait_state(redis_link_state::up, 3s));
    EXPECT_EQ(states.states.front(), redis_link_state::down);
}

TEST_F(redis_connection_test, reconnect_drops_and_comes_back_at_once) {
    redis_test_server server;
    auto connection = connect(server.url());
    ASSERT_TRUE(wait_state(redis_link_state::up, 3s));
    const auto first_id = run_command(loop, *connection, {"CLIENT", "ID"}).reply.integer;
    connection->reconnect();
    ASSERT_TRUE(wait_state(redis_link_state::up, 3s, 2));
    EXPECT_NE(run_command(loop, *connection, {"CLIENT", "ID"}).reply.integer, first_id);
    EXPECT_EQ(states.count(redis_link_state::down), 1);
}

TEST(redis_connection_threads, every_callback_runs_on_the_strand_of_a_multithreaded_context) {
    // The server's shape: one io_context run by several threads, the client on one strand.
    redis_test_server server;
    boost::asio::io_context io;
    const auto strand = boost::asio::make_strand(io);
    auto work = boost::asio::make_work_guard(io);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) threads.emplace_back([&] { io.run(); });

    std::atomic<int> answered{0}, off_strand{0}, errors{0}, observed_up{0};
    std::shared_ptr<redis_connection> connection;
    constexpr int commands = 3000;
    boost::asio::post(strand, [&] {
        connection = redis_connection::create(strand, options_for(server.url()));
        connection->add_state_observer([&](redis_link_state state) {
            if (!strand.running_in_this_thread()) ++off_strand;
            if (state == redis_link_state::up) ++observed_up;
        });
        connection->start();
        for (int i = 0; i < commands; ++i) {
            connection->command({"INCR", "n"}, 5s, [&, i](std::error_code ec, redis_reply reply) {
                if (!strand.running_in_this_thread()) ++off_strand;
                if (ec || reply.integer != i + 1) ++errors;
                ++answered;
            });
        }
    });
    const bool done = testing::eventually([&] { return answered.load() == commands; }, 10s);
    boost::asio::post(strand, [&] { connection.reset(); });
    work.reset();
    for (auto& thread : threads) thread.join();
    EXPECT_TRUE(done);
    EXPECT_EQ(answered.load(), commands);
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(off_strand.load(), 0);
    EXPECT_EQ(observed_up.load(), 1);
}

TEST(redis_connection_shutdown, destroyed_after_the_loop_stopped_leaks_nothing) {
    // The server's shutdown order: the loop stops, then the objects go, then the io_context.
    // Handlers posted then never run; they must still be freed (LeakSanitizer checks at exit).
    redis_test_server server;
    auto loop = std::make_unique<redis_test_loop>();
    auto connection = redis_connection::create(loop->executor(), options_for(server.url()));
    connection->start();
    ASSERT_EQ(run_command(*loop, *connection, {"PING"}).reply, redis_reply::make_status("PONG"));
    server.pause();
    auto pending = send_command(*connection, {"GET", "x"}, 5s);
    loop->run_until([] { return false; }, 50ms);  // the command is written and waits for Redis
    connection.reset();
    loop.reset();
    EXPECT_EQ(pending.use_count(), 1);  // the handler (and what it held) was destroyed unrun
    EXPECT_EQ(pending->calls, 0);
}

TEST(redis_probe, says_whether_redis_is_usable) {
    redis_test_server server(with_password("probe-pw"));
    const auto ok = probe_redis(server.url(), std::nullopt, 1000ms);
    EXPECT_TRUE(ok.reachable) << ok.detail;
    EXPECT_NE(ok.detail.find("PONG from 127.0.0.1:" + std::to_string(server.port())), std::string::npos) << ok.detail;

    auto wrong = server.url();
    wrong.password = "not-the-pw";
    const auto refused = probe_redis(wrong, std::nullopt, 1000ms);
    EXPECT_FALSE(refused.reachable);
    EXPECT_NE(refused.detail.find("AUTH failed"), std::string::npos) << refused.detail;
    EXPECT_EQ(refused.detail.find("not-the-pw"), std::string::npos) << refused.detail;

    server.pause();
    const auto started = std::chrono::steady_clock::now();
    const auto paused = probe_redis(server.url(), std::nullopt, 300ms);
    const double took = ms_between(started, std::chrono::steady_clock::now());
    EXPECT_FALSE(paused.reachable);
    EXPECT_LT(took, 1000.0) << paused.detail;
    std::printf("[ measure ] probe of a paused redis answered in %.1f ms: %s\n", took, paused.detail.c_str());
    server.resume();
    server.kill();
    const auto gone = probe_redis(server.url(), std::nullopt, 300ms);
    EXPECT_FALSE(gone.reachable);
    EXPECT_NE(gone.detail.find("Connection refused"), std::string::npos) << gone.detail;
}

}  // namespace
}  // namespace voice_broker
