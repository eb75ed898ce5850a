// JSON answers in the one shape every API response uses.
#pragma once

#include "voice_broker/http_message.hpp"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>

namespace voice_broker {

http_response json_response(unsigned status, const nlohmann::json& body);

// {"error":{"code":"...","message":"..."}}; the message says what to do next.
http_response api_error(unsigned status, std::string_view code, std::string_view message);

// 405 with the Allow header.
http_response method_not_allowed(std::string_view allow);

}  // namespace voice_broker
