#include "voice_broker/http_message.hpp"

#include "voice_broker/ascii.hpp"

namespace voice_broker {

namespace {
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return std::nullopt;
            const int hi = hex_value(in[i + 1]);
            const int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

std::string_view http_request::header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers) {
        if (k == lower_name) return v;
    }
    return {};
}

std::optional<std::string> http_request::query_param(std::string_view name) const {
    std::optional<std::string> found;
    for_each_list_item(query, '&', [&](std::string_view pair) {
        if (found) return;
        const auto eq = pair.find('=');
        const auto key = percent_decode(pair.substr(0, eq), true);
        if (key && *key == name) found = eq == std::string_view::npos ? std::optional<std::string>{""} : percent_decode(pair.substr(eq + 1), true);
    });
    return found;
}

std::optional<std::string> http_request::cookie(std::string_view name) const {
    std::optional<std::string> found;
    for (const auto& [k, v] : headers) {
        if (k != "cookie") continue;
        for_each_list_item(v, ';', [&](std::string_view item) {
            const auto eq = item.find('=');
            if (!found && eq != std::string_view::npos && item.substr(0, eq) == name) found = std::string(item.substr(eq + 1));
        });
    }
    return found;
}

void http_response::set_header(std::string name, std::string value) {
    for (auto& [k, v] : headers) {
        if (iequals_ascii(k, name)) {
            v = std::move(value);
            return;
        }
    }
    headers.emplace_back(std::move(name), std::move(value));
}

std::string_view http_response::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (iequals_ascii(k, name)) return v;
    }
    if (!prepared_head) return {};
    std::string_view rest = *prepared_head;
    while (!rest.empty()) {
        const auto eol = rest.find("\r\n");
        const auto line = rest.substr(0, eol);
        rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || !iequals_ascii(line.substr(0, colon), name)) continue;
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        return value;
    }
    return {};
}

}  // namespace voice_broker
