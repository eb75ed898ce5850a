// http_request / http_response: the plain, Beast-free messages the router and the API work on.
// The sessions convert at the edge, so the domain and its tests never compile Beast.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace voice_broker {

struct http_request {
    std::string method;  // "GET"
    std::string target;  // as received: "/api/session?action=join"
    std::string path;    // target before '?'
    std::string query;   // target after '?'
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
    std::string body;
    // What the connection knows (set by the session that read the request):
    std::string peer_address;        // the socket's peer
    bool over_tls = false;           // arrived through our own TLS
    bool plain_on_tls_port = false;  // plain HTTP where TLS was expected
    bool websocket_upgrade = false;  // asks to become a WebSocket
    // What the router resolved (client_identity, request_id):
    std::string client_address;  // after TRUSTED_PROXIES resolution
    bool secure = false;         // https, directly or behind a trusted proxy
    std::string request_id;

    std::string_view header(std::string_view lower_name) const;
    std::optional<std::string> query_param(std::string_view name) const;  // percent-decoded
    std::optional<std::string> cookie(std::string_view name) const;
};

struct http_response {
    unsigned status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::shared_ptr<const std::string> shared_body;  // static files: served without a copy
    // Header lines rendered once ("Name: value\r\n" each), sent before `headers`: a static
    // file's 200 answer is then written without building a single header per request.
    std::shared_ptr<const std::string> prepared_head;
    bool omit_body = false;                          // HEAD: headers (and length) only

    std::string_view body_view() const { return shared_body ? std::string_view(*shared_body) : std::string_view(body); }
    void set_header(std::string name, std::string value);
    std::string_view header(std::string_view name) const;  // case-insensitive; also in prepared_head
};

// Calls f(item) for each `separator`-separated item of a header-style list, spaces trimmed.
template <class F>
void for_each_list_item(std::string_view list, char separator, F&& f) {
    while (!list.empty()) {
        const auto at = list.find(separator);
        auto item = list.substr(0, at);
        list = at == std::string_view::npos ? std::string_view{} : list.substr(at + 1);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        f(item);
    }
}

// Percent-decoding; nullopt on a malformed escape.  `plus_is_space` for query strings.
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space);

}  // namespace voice_broker
