#include "voice_broker/redis_reply.hpp"

namespace voice_broker {

redis_reply redis_reply::make_integer(std::int64_t value) {
    redis_reply reply;
    reply.type = redis_reply_type::integer;
    reply.integer = value;
    return reply;
}

redis_reply redis_reply::make_string(std::string value) {
    redis_reply reply;
    reply.type = redis_reply_type::string;
    reply.text = std::move(value);
    return reply;
}

redis_reply redis_reply::make_status(std::string value) {
    redis_reply reply;
    reply.type = redis_reply_type::status;
    reply.text = std::move(value);
    return reply;
}

redis_reply redis_reply::make_error(std::string message) {
    redis_reply reply;
    reply.type = redis_reply_type::error;
    reply.text = std::move(message);
    return reply;
}

redis_reply redis_reply::make_array(std::vector<redis_reply> values) {
    redis_reply reply;
    reply.type = redis_reply_type::array;
    reply.elements = std::move(values);
    return reply;
}

bool redis_reply::is_error(std::string_view code) const {
    if (type != redis_reply_type::error || text.size() < code.size()) return false;
    if (text.compare(0, code.size(), code) != 0) return false;
    return text.size() == code.size() || text[code.size()] == ' ';
}

bool redis_reply::is(std::string_view value) const {
    return (type == redis_reply_type::status || type == redis_reply_type::string) && text == value;
}

std::string redis_reply::describe() const {
    constexpr std::size_t max_text = 80;
    constexpr std::size_t max_elements = 10;
    auto cut = [&](const std::string& value) {
        return value.size() <= max_text ? value : value.substr(0, max_text) + "...";
    };
    switch (type) {
    case redis_reply_type::nil: return "(nil)";
    case redis_reply_type::integer: return "(integer) " + std::to_string(integer);
    case redis_reply_type::string: return "\"" + cut(text) + "\"";
    case redis_reply_type::status: return "+" + cut(text);
    case redis_reply_type::error: return "-" + cut(text);
    case redis_reply_type::array: {
        std::string out = "[";
        for (std::size_t i = 0; i < elements.size(); ++i) {
            if (i == max_elements) {
                out += ", ... (" + std::to_string(elements.size()) + " elements)";
                break;
            }
            if (i != 0) out += ", ";
            out += elements[i].describe();
        }
        return out + "]";
    }
    }
    return "?";
}

}  // namespace voice_broker
