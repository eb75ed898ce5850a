#include "voice_broker/redis_error.hpp"

namespace voice_broker {

namespace {

class redis_error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "redis"; }
    std::string message(int value) const override {
        switch (static_cast<redis_error>(value)) {
        case redis_error::timeout: return "Redis did not answer before the command's deadline";
        case redis_error::connection_lost: return "the connection to Redis dropped before the answer";
        case redis_error::not_connected: return "no connection to Redis before the command's deadline";
        case redis_error::closed: return "the Redis client was closed";
        case redis_error::queue_full: return "too many commands are waiting for Redis";
        case redis_error::no_master: return "no sentinel named a Redis master";
        case redis_error::empty_command: return "a Redis command needs at least its name";
        }
        return "unknown Redis client error";
    }
};

}  // namespace

const std::error_category& redis_category() {
    static const redis_error_category category;
    return category;
}

std::error_code make_error_code(redis_error e) { return {static_cast<int>(e), redis_category()}; }

bool redis_outcome_unknown(std::error_code ec) {
    return ec == redis_error::timeout || ec == redis_error::connection_lost || ec == redis_error::closed;
}

}  // namespace voice_broker
