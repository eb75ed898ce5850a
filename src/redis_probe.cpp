#include "voice_broker/redis_probe.hpp"

#include "voice_broker/redis_connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>

namespace voice_broker {

namespace net = boost::asio;

redis_probe_result probe_redis(const redis_url& url, const std::optional<redis_sentinel_settings>& sentinel,
                               std::chrono::milliseconds timeout) {
    net::io_context io;
    std::shared_ptr<redis_master_locator> locator;
    if (sentinel) locator = redis_master_locator::create(io.get_executor(), *sentinel);  // locate only, no watch

    redis_client_options options;
    options.url = url;
    options.sentinel = locator;
    options.client_name = "voice-broker-check";
    options.connect_timeout = timeout;
    options.reconnect_delay_min = timeout;  // one attempt: the first failure is the answer
    options.reconnect_delay_max = timeout;
    auto connection = redis_connection::create(io.get_executor(), options);

    const std::string target = sentinel ? "the master '" + sentinel->master_name + "' named by the sentinels"
                                        : "Redis at " + url.redacted();
    std::optional<redis_probe_result> result;
    auto finish = [&](bool reachable, std::string detail) {
        if (result) return;
        result = redis_probe_result{reachable, std::move(detail)};
        connection->close();
        if (locator) locator->close();
    };
    connection->add_state_observer([&](redis_link_state state) {
        if (state == redis_link_state::down) finish(false, target + " is not usable: " + connection->last_error());
    });
    const auto started = std::chrono::steady_clock::now();
    connection->start();
    connection->command({"PING"}, timeout, [&](std::error_code ec, redis_reply reply) {
        if (ec) {
            const auto why = connection->last_error();
            finish(false, target + " did not answer PING: " + (why.empty() ? ec.message() : why));
            return;
        }
        if (!reply.is("PONG")) {
            finish(false, target + " answered PING with " + reply.describe());
            return;
        }
        const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started);
        char took[32];
        std::snprintf(took, sizeof took, "%.1f", elapsed.count());
        const auto where = connection->connected_endpoint();
        finish(true, "PONG from " + (where ? where->to_string() : target) + " (db " + std::to_string(url.database) +
                         ") in " + took + " ms");
    });
    io.run_for(timeout + std::chrono::milliseconds{500});
    if (!result) finish(false, target + " did not answer within " + std::to_string(timeout.count()) + " ms");
    // Let the handlers that close() posted run, so that nothing is left behind.
    io.restart();
    io.run_for(std::chrono::milliseconds{200});
    return *result;
}

}  // namespace voice_broker
