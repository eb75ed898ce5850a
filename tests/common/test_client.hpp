// Synchronous test clients for HTTP(S) and WebSocket.  Beast-free on purpose: the Beast code is
// compiled once, in test_client.cpp.  Every wait is bounded, so a broken server fails a test
// instead of hanging it.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace voice_broker::testing {

using namespace std::chrono_literals;

struct response {
    unsigned status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    bool keep_alive = false;

    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
    std::string header(const std::string& lower_name) const {
        auto it = headers.find(lower_name);
        return it == headers.end() ? std::string{} : it->second;
    }
};

struct tls_options {
    bool enabled = false;
    int max_version = 0;  // 0: library default; e.g. TLS1_1_VERSION to prove it is refused
    int min_version = 0;
};

using header_list = std::vector<std::pair<std::string, std::string>>;

// One keep-alive connection.  Throws std::runtime_error on connection or timeout failures.
class http_client {
public:
    explicit http_client(std::uint16_t port, tls_options tls = {}, std::chrono::milliseconds timeout = 10s);
    ~http_client();

    response request(const std::string& method, const std::string& target, const header_list& headers = {},
                     const std::string& body = {});
    response get(const std::string& target, const header_list& headers = {}) { return request("GET", target, headers); }
    response post(const std::string& target, const std::string& body = {}, const header_list& headers = {}) {
        return request("POST", target, headers, body);
    }

    // Sends raw bytes and reads whatever comes back until the server closes or the timeout.
    std::string raw_exchange(const std::string& bytes, std::chrono::milliseconds timeout = 5s);
    void send_raw(const std::string& bytes);
    // True when the server closed the connection (read returns EOF) within the timeout.
    bool closed_by_server(std::chrono::milliseconds timeout);

    std::string negotiated_tls_version() const;

private:
    // Reads until the server closes (true) or the timeout passes (false), appending what came.
    bool read_until_closed(std::string& out, std::chrono::milliseconds timeout);

    struct impl;
    std::unique_ptr<impl> impl_;
};

// Convenience: one request on a fresh connection.
response fetch(std::uint16_t port, const std::string& method, const std::string& target, const header_list& headers = {},
               const std::string& body = {}, tls_options tls = {});

class ws_client {
public:
    // Throws when the upgrade fails; `status` of the refusal is in the message.
    ws_client(std::uint16_t port, const std::string& target, const header_list& headers = {}, tls_options tls = {});
    ~ws_client();

    // The next text message as JSON, or nullopt when none arrives in time or the socket closed.
    std::optional<nlohmann::json> next(std::chrono::milliseconds timeout = 5s);
    // Skips messages until one of the given type arrives (or times out).
    std::optional<nlohmann::json> next_of_type(const std::string& type, std::chrono::milliseconds timeout = 5s);
    void send(const std::string& text);
    void close();
    bool is_closed() const;
    int close_code() const;  // the server's close code, once closed

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace voice_broker::testing
