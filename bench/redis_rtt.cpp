// redis_rtt: commands per second through voice-broker's Redis client (redis_connection: hiredis
// async driven by Asio, on a strand, every reply posted back), one connection, `window`
// commands in flight.  The anchor is Debian's redis-benchmark (C, hiredis) with -c 1 -P window
// against the same server, run by redis-client.sh.
//
//   redis_rtt <socket-path | host:port> <requests> <window> <PING|SET|GET>
// prints one JSON line: {"client":"voice-broker","command":...,"window":...,"rps":...,"us_per_command":...}
#include "voice_broker/redis_connection.hpp"
#include "voice_broker/redis_error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace voice_broker;

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: redis_rtt <socket-path|host:port> <requests> <window> <PING|SET|GET>\n");
        return 2;
    }
    spdlog::set_level(spdlog::level::warn);
    const std::string target = argv[1];
    const long requests = std::atol(argv[2]);
    const long window = std::atol(argv[3]);
    const std::string command = argv[4];

    redis_client_options options;
    if (target.find('/') != std::string::npos) {
        options.url.endpoint = redis_endpoint{{}, 0, target};
    } else {
        options.url.endpoint = *redis_endpoint::parse_host_port(target);
    }
    std::vector<std::string> args{command};
    if (command == "SET") args = {"SET", "key:__rand_int__", "xxx"};  // redis-benchmark's defaults
    if (command == "GET") args = {"GET", "key:__rand_int__"};

    boost::asio::io_context io;
    auto connection = redis_connection::create(boost::asio::make_strand(io), options);
    connection->start();

    long sent = 0, answered = 0, failed = 0;
    std::chrono::steady_clock::time_point started;
    std::function<void()> send_one = [&] {
        ++sent;
        connection->command(args, std::chrono::seconds{10}, [&](std::error_code ec, redis_reply reply) {
            if (ec || reply.is_error()) ++failed;
            if (++answered == requests) {
                connection->close();
                return;
            }
            if (sent < requests) send_one();
        });
    };
    // Warm up (connect), then measure.
    connection->command({"PING"}, std::chrono::seconds{5}, [&](std::error_code ec, redis_reply) {
        if (ec) {
            std::fprintf(stderr, "redis_rtt: %s: %s\n", ec.message().c_str(), connection->last_error().c_str());
            connection->close();
            return;
        }
        started = std::chrono::steady_clock::now();
        for (long i = 0; i < window && sent < requests; ++i) send_one();
    });
    io.run();
    if (answered != requests || failed != 0) {
        std::fprintf(stderr, "redis_rtt: %ld of %ld answered, %ld failed\n", answered, requests, failed);
        return 1;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("{\"client\":\"voice-broker\",\"command\":\"%s\",\"window\":%ld,\"requests\":%ld,\"rps\":%.0f,"
                "\"us_per_command\":%.2f}\n",
                command.c_str(), window, requests, requests / seconds, seconds * 1e6 / requests);
    return 0;
}
