// redis_reply: one Redis reply as a plain value, decoupled from hiredis (RESP2: nil, integer,
// bulk string, status, error, array).  Cheap to move, compared by value in tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace voice_broker {

enum class redis_reply_type { nil, integer, string, status, error, array };

struct redis_reply {
    redis_reply_type type = redis_reply_type::nil;
    std::int64_t integer = 0;           // integer
    std::string text;                   // string, status and error (the whole "-ERR ..." line without '-')
    std::vector<redis_reply> elements;  // array

    static redis_reply nil() { return {}; }
    static redis_reply make_integer(std::int64_t value);
    static redis_reply make_string(std::string value);
    static redis_reply make_status(std::string value);
    static redis_reply make_error(std::string message);
    static redis_reply make_array(std::vector<redis_reply> values);

    bool is_nil() const { return type == redis_reply_type::nil; }
    bool is_error() const { return type == redis_reply_type::error; }
    // An error reply whose first word is `code`: "NOSCRIPT", "READONLY", "MASTERDOWN", "WRONGTYPE"...
    bool is_error(std::string_view code) const;
    // A status or bulk string equal to `value` ("OK", "PONG").
    bool is(std::string_view value) const;

    // A short human-readable form for logs and test failures: (nil), (integer) 3, "text", +OK,
    // -ERR ..., [a, b].  Long strings are cut.
    std::string describe() const;

    bool operator==(const redis_reply&) const = default;
};

}  // namespace voice_broker
