// redis_test_loop: the test's own io_context, run on the test thread until a condition holds
// (or a deadline passes).  The Redis clients under test live on a strand of it, as they do in
// the server, and every wait ends on their own events (a handler ran, an observer saw a state).
#pragma once

#include "voice_broker/redis_connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace voice_broker::testing {

class redis_test_loop {
public:
    boost::asio::any_io_executor executor() { return strand_; }

    // Runs handlers until `done()` holds; false when `timeout` passed first.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            if (io_.stopped()) io_.restart();
            io_.run_one_for(std::chrono::milliseconds{10});
        }
        return true;
    }

    // Runs whatever is ready now (posted completions), without waiting for anything new.
    void drain() {
        if (io_.stopped()) io_.restart();
        io_.poll();
    }

private:
    boost::asio::io_context io_;
    boost::asio::any_io_executor strand_ = boost::asio::make_strand(io_);
};

// One command's outcome, and how many times its handler ran (must end at exactly 1).
struct command_outcome {
    int calls = 0;
    std::error_code error;
    redis_reply reply;
    std::chrono::steady_clock::time_point answered_at;
    bool done() const { return calls > 0; }
};

inline std::shared_ptr<command_outcome> send_command(redis_connection& connection, std::vector<std::string> args,
                                                     std::chrono::milliseconds timeout) {
    auto outcome = std::make_shared<command_outcome>();
    connection.command(std::move(args), timeout, [outcome](std::error_code ec, redis_reply reply) {
        ++outcome->calls;
        outcome->error = ec;
        outcome->reply = std::move(reply);
        outcome->answered_at = std::chrono::steady_clock::now();
    });
    return outcome;
}

// Sends and runs the loop until the answer; the outcome has calls == 0 if none came in time.
inline command_outcome run_command(redis_test_loop& loop, redis_connection& connection, std::vector<std::string> args,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds{2000}) {
    auto outcome = send_command(connection, std::move(args), timeout);
    loop.run_until([&] { return outcome->done(); }, timeout + std::chrono::milliseconds{3000});
    return *outcome;
}

// Records every state an observer is told, in order.
struct state_log {
    std::vector<redis_link_state> states;
    redis_link_state last() const { return states.empty() ? redis_link_state::connecting : states.back(); }
    int count(redis_link_state state) const {
        int n = 0;
        for (auto s : states) n += s == state ? 1 : 0;
        return n;
    }
};

}  // namespace voice_broker::testing
