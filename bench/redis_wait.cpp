// redis_wait: what durable admissions cost.  One Redis store (the real one: redis_store.cpp and
// its Lua script) against a master with a replica; `visitors` loops run join -> (admitted)
// -> leave, each step one script, so every cycle is one admission and one end.  With
// wait_replicas 1, each of those writes is followed by WAIT 1 and its batch is published by the
// store after the replica acknowledged it; with 0, the script publishes at once.  redis-wait.sh
// runs both in the same run, interleaved, and reports the ratio.
//
//   redis_wait <host:port> <cycles> <visitors> <wait_replicas> <wait_timeout_ms>
// prints one JSON line: {"wait":..,"visitors":..,"cycles":..,"admissions_per_s":..,
//   "join_p50_us":..,"join_p99_us":..,"leave_p50_us":..,"leave_p99_us":..,"errors":..}
#include "redis_store.hpp"
#include "voice_broker/metrics.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

using namespace voice_broker;
using clock_type = std::chrono::steady_clock;

namespace {

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: redis_wait <host:port> <cycles> <visitors> <wait_replicas> <wait_timeout_ms>\n");
        return 2;
    }
    spdlog::set_level(spdlog::level::err);
    const std::string target = argv[1];
    const long cycles = std::atol(argv[2]);
    const int visitors = std::atoi(argv[3]);
    const int wait_replicas = std::atoi(argv[4]);
    const int wait_timeout = std::atoi(argv[5]);

    session_limits limits;
    limits.max_concurrent_users = static_cast<std::size_t>(visitors);  // every join is an admission
    limits.max_queue_length = 1000;
    limits.session_duration = std::chrono::seconds{600};
    limits.heartbeat_timeout = std::chrono::seconds{600};
    redis_store_options options;
    options.settings.redis_url = "redis://" + target + "/0";
    options.settings.key_prefix = "bench-wait-" + std::to_string(::getpid()) + "-" + std::to_string(wait_replicas);
    options.settings.instance_id = "bench";
    options.settings.wait_replicas = wait_replicas;
    options.settings.wait_timeout = std::chrono::milliseconds{wait_timeout};

    boost::asio::io_context io;
    const boost::asio::any_io_executor strand = boost::asio::make_strand(io);
    metrics counters;
    auto store = make_redis_store(strand, limits, [] { return clock_type::now(); }, options, counters);

    // Waits until the store is connected and its mirror read (a first join would otherwise race it).
    const auto ready_by = clock_type::now() + std::chrono::seconds{10};
    while (!store->available() && clock_type::now() < ready_by) io.run_one_for(std::chrono::milliseconds{10});
    if (!store->available()) {
        std::fprintf(stderr, "redis_wait: the store did not connect to %s\n", target.c_str());
        return 1;
    }

    std::vector<double> joins, leaves;
    long started = 0, finished = 0, errors = 0, ticket = 0;
    std::function<void()> cycle = [&] {
        if (started >= cycles) return;
        ++started;
        const auto t = "bench-" + std::to_string(++ticket);
        const auto joined_at = clock_type::now();
        store->join(join_request{t, std::nullopt, "127.0.0.1"}, [&, t, joined_at](store_error e, join_outcome o) {
            if (e != store_error::none || o.status.state != entry_state::active) ++errors;
            const auto left_at = clock_type::now();
            joins.push_back(std::chrono::duration<double, std::micro>(left_at - joined_at).count());
            store->leave(t, [&, left_at](store_error e2, std::optional<entry_status>) {
                if (e2 != store_error::none) ++errors;
                leaves.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - left_at).count());
                ++finished;
                cycle();
            });
        });
    };
    const auto t0 = clock_type::now();
    for (int i = 0; i < visitors; ++i) cycle();
    while (finished < cycles) io.run_one_for(std::chrono::milliseconds{100});
    const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    store->shutdown(false);
    store.reset();
    io.poll();

    std::printf("{\"wait\":%d,\"visitors\":%d,\"cycles\":%ld,\"admissions_per_s\":%.0f,\"join_p50_us\":%.0f,\"join_p99_us\":%.0f,"
                "\"leave_p50_us\":%.0f,\"leave_p99_us\":%.0f,\"errors\":%ld}\n",
                wait_replicas, visitors, cycles, static_cast<double>(cycles) / seconds, percentile(joins, 0.5),
                percentile(joins, 0.99), percentile(leaves, 0.5), percentile(leaves, 0.99), errors);
    return errors == 0 ? 0 : 1;
}
