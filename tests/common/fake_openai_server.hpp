// fake_openai_server: the fake OpenAI (tests/fakes/fake-openai) as a child process on loopback,
// with its control API (faults, scripts, state, waits) for the cost-guard tests.  Stopped with
// SIGTERM (then SIGKILL) when it goes out of scope, also when a test fails.
#pragma once

#include "test_client.hpp"
#include "test_support.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace voice_broker::testing {

inline const std::string fake_openai_key = "test-openai-key-for-the-fake-0123456789";

// A plain SDP offer without ICE: the fake answers it with a canned answer and opens a call with
// no WebRTC peer; its conversation starts when the first sideband attaches.
extern const std::string dummy_sdp_offer;

class fake_openai_server {
public:
    // `extra_args`: e.g. {"--tls-cert", cert, "--tls-key", key} (then scheme "https"),
    // {"--script", "{\"mode\":\"silent\"}"}.
    explicit fake_openai_server(const std::vector<std::string>& extra_args = {}, std::string scheme = "http");
    ~fake_openai_server();

    std::uint16_t port() const { return port_; }
    std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }

    nlohmann::json state() const;
    nlohmann::json call(const std::string& call_id) const;
    // POST /__control/<path> with a JSON body; returns the answer's JSON (throws on a non-2xx).
    nlohmann::json control(const std::string& path, const nlohmann::json& body = nlohmann::json::object()) const;
    void fault(const nlohmann::json& f) const { control("faults", f); }
    void script(const nlohmann::json& s) const { control("script", s); }
    // GET /__control/wait?<query>&timeoutMs=<timeout>: true once every threshold is met.
    bool wait(const std::string& query, std::chrono::milliseconds timeout = std::chrono::seconds{5}) const;
    int count(const std::string& route) const;
    // Opens a call with the real key and a dummy offer, as relay mode would; returns its id.
    // With `session`, it goes as the multipart `session` part (the server's session settings).
    std::string open_call(const nlohmann::json& session = nullptr) const;

private:
    response request(const std::string& method, const std::string& target, const std::string& body = {}) const;

    subprocess proc_;
    std::string scheme_;
    std::uint16_t port_ = 0;
};

}  // namespace voice_broker::testing
