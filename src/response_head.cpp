#include "voice_broker/response_head.hpp"

#include <charconv>
#include <ctime>

namespace voice_broker {

std::string_view reason_phrase(unsigned status) {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

std::string_view date_line() {
    thread_local std::time_t cached_second = -1;
    thread_local char line[64];
    thread_local std::size_t length = 0;
    const auto now = std::time(nullptr);
    if (now != cached_second) {
        cached_second = now;
        std::tm utc{};
        gmtime_r(&now, &utc);
        length = std::strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &utc);
    }
    return {line, length};
}

namespace {

void append_number(std::string& out, std::size_t n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out.append(digits, static_cast<std::size_t>(end - digits));
}

bool safe_value(std::string_view v) { return v.find_first_of("\r\n") == std::string_view::npos; }

}  // namespace

void write_response_head(std::string& out, const http_response& res, std::size_t body_size, const head_options& options) {
    out.append("HTTP/1.1 ");
    append_number(out, res.status);
    out.push_back(' ');
    out.append(reason_phrase(res.status));
    out.append("\r\n");
    out.append(date_line());
    out.append(options.fixed_lines);
    if (res.prepared_head) out.append(*res.prepared_head);
    for (const auto& [name, value] : res.headers) {
        if (!safe_value(name) || !safe_value(value)) continue;
        out.append(name).append(": ").append(value).append("\r\n");
    }
    if (res.status != 204 && res.status != 304) {
        out.append("Content-Length: ");
        append_number(out, body_size);
        out.append("\r\n");
    }
    if (!options.request_id.empty()) out.append("X-Request-Id: ").append(options.request_id).append("\r\n");
    if (!options.keep_alive) out.append("Connection: close\r\n");
    else if (options.version == 10) out.append("Connection: keep-alive\r\n");
    out.append("\r\n");
}

}  // namespace voice_broker
