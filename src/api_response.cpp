#include "voice_broker/api_response.hpp"

#include <nlohmann/json.hpp>

namespace voice_broker {

http_response json_response(unsigned status, const nlohmann::json& body) {
    http_response res;
    res.status = status;
    res.set_header("Content-Type", "application/json");
    res.set_header("Cache-Control", "no-store");
    res.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return res;
}

http_response api_error(unsigned status, std::string_view code, std::string_view message) {
    return json_response(status, {{"error", {{"code", code}, {"message", message}}}});
}

http_response method_not_allowed(std::string_view allow) {
    auto res = api_error(405, "method_not_allowed", "This method is not allowed here; use " + std::string(allow) + ".");
    res.set_header("Allow", std::string(allow));
    return res;
}

}  // namespace voice_broker
