#include "voice_broker/redis_script.hpp"

#include "voice_broker/redis_error.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace voice_broker {

namespace {

using clock_type = std::chrono::steady_clock;

std::string sha1_hex(const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr) != 1) {
        throw std::runtime_error("SHA1 of a Lua script failed");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0x0f]);
    }
    return out;
}

std::vector<std::string> evalsha_command(const std::string& sha1, std::vector<std::string> keys,
                                         std::vector<std::string> args) {
    std::vector<std::string> command;
    command.reserve(3 + keys.size() + args.size());
    command.push_back("EVALSHA");
    command.push_back(sha1);
    command.push_back(std::to_string(keys.size()));
    for (auto& key : keys) command.push_back(std::move(key));
    for (auto& arg : args) command.push_back(std::move(arg));
    return command;
}

std::chrono::milliseconds time_left(clock_type::time_point deadline) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
}

// One script call with its WAIT, across the NOSCRIPT retry.  Replies arrive in command order, so
// the script's handler always runs before the WAIT sent behind it.
struct replicated_call {
    std::vector<std::string> command;
    std::string source;
    int replicas = 0;
    std::chrono::milliseconds wait_timeout{0};
    clock_type::time_point deadline;
    redis_script::replicated_handler handler;
    std::error_code script_error;
    redis_reply script_reply;
    std::optional<redis_reply> load_error;
    bool retried = false;
    bool retrying = false;  // the first WAIT's answer belongs to a superseded attempt
};

void send_replicated(redis_connection& connection, const std::shared_ptr<replicated_call>& call) {
    const auto timeout = time_left(call->deadline);
    std::weak_ptr<redis_connection> weak = connection.weak_from_this();
    connection.command(call->command, timeout, [call, weak](std::error_code ec, redis_reply reply) {
        if (!ec && reply.is_error("NOSCRIPT") && !call->retried) {
            auto connection = weak.lock();
            if (connection && time_left(call->deadline).count() > 0) {
                call->retried = true;
                call->retrying = true;
                connection->command({"SCRIPT", "LOAD", call->source}, time_left(call->deadline),
                                    [call](std::error_code, redis_reply loaded) {
                                        if (loaded.is_error()) call->load_error = std::move(loaded);
                                    });
                send_replicated(*connection, call);
                return;
            }
        }
        if (!ec && reply.is_error("NOSCRIPT") && call->load_error) reply = *call->load_error;
        call->retrying = false;
        call->script_error = ec;
        call->script_reply = std::move(reply);
    });
    connection.command({"WAIT", std::to_string(call->replicas), std::to_string(call->wait_timeout.count())}, timeout,
                       [call](std::error_code ec, redis_reply reply) {
                           if (call->retrying) return;
                           std::int64_t acknowledged = -1;
                           if (!call->script_error && !call->script_reply.is_error() && !ec &&
                               reply.type == redis_reply_type::integer) {
                               acknowledged = reply.integer;
                           }
                           auto handler = std::move(call->handler);
                           handler(call->script_error, std::move(call->script_reply), acknowledged);
                       });
}

}  // namespace

redis_script::redis_script(std::string source) : source_(std::move(source)), sha1_(sha1_hex(source_)) {}

void redis_script::run(redis_connection& connection, std::vector<std::string> keys, std::vector<std::string> args,
                       std::chrono::milliseconds timeout, redis_connection::reply_handler handler) const {
    const auto deadline = clock_type::now() + timeout;
    auto command = evalsha_command(sha1_, std::move(keys), std::move(args));
    std::weak_ptr<redis_connection> weak = connection.weak_from_this();
    connection.command(
        command, timeout,
        [weak, command, source = source_, deadline, handler = std::move(handler)](std::error_code ec,
                                                                                   redis_reply reply) mutable {
            if (ec || !reply.is_error("NOSCRIPT")) {
                handler(ec, std::move(reply));
                return;
            }
            auto connection = weak.lock();
            const auto left = time_left(deadline);
            if (!connection || left.count() <= 0) {
                handler(connection ? redis_error::timeout : redis_error::closed, {});
                return;
            }
            // Load and run again, pipelined; a failed load (a syntax error) is the better answer
            // than the second NOSCRIPT it causes.
            auto load_error = std::make_shared<std::optional<redis_reply>>();
            connection->command({"SCRIPT", "LOAD", std::move(source)}, left,
                                [load_error](std::error_code, redis_reply loaded) {
                                    if (loaded.is_error()) *load_error = std::move(loaded);
                                });
            connection->command(std::move(command), left,
                                [load_error, handler = std::move(handler)](std::error_code ec2, redis_reply again) {
                                    if (!ec2 && again.is_error("NOSCRIPT") && *load_error) again = **load_error;
                                    handler(ec2, std::move(again));
                                });
        });
}

void redis_script::run_replicated(redis_connection& connection, std::vector<std::string> keys,
                                  std::vector<std::string> args, int replicas, std::chrono::milliseconds wait_timeout,
                                  std::chrono::milliseconds timeout, replicated_handler handler) const {
    auto call = std::make_shared<replicated_call>();
    call->command = evalsha_command(sha1_, std::move(keys), std::move(args));
    call->source = source_;
    call->replicas = replicas;
    call->wait_timeout = wait_timeout;
    call->deadline = clock_type::now() + timeout;
    call->handler = std::move(handler);
    send_replicated(connection, call);
}

}  // namespace voice_broker
