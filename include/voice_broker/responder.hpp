// responder: the one way to answer a request, exactly once.  It is move-only; calling it sends
// the answer, and destroying it unused (a handler that forgot, an exception, a callback the
// upstream never made) sends 500 internal_error instead, so no connection is ever left waiting
// for an answer that will not come.  Any thread may call or destroy it; the function it wraps
// takes the answer back to the connection's own thread.
#pragma once

#include "voice_broker/http_message.hpp"

#include <functional>
#include <utility>

namespace voice_broker {

class responder {
public:
    responder() = default;
    explicit responder(std::function<void(http_response)> send) : send_(std::move(send)) {}
    responder(responder&& other) noexcept : send_(std::exchange(other.send_, nullptr)) {}
    responder& operator=(responder&& other) noexcept {
        if (this != &other) {
            abandon();
            send_ = std::exchange(other.send_, nullptr);
        }
        return *this;
    }
    responder(const responder&) = delete;
    responder& operator=(const responder&) = delete;
    ~responder() { abandon(); }

    // Sends the answer; later calls do nothing.
    void operator()(http_response answer) {
        if (auto send = std::exchange(send_, nullptr)) send(std::move(answer));
    }

    bool answered() const { return !send_; }

private:
    void abandon() noexcept;

    std::function<void(http_response)> send_;
};

}  // namespace voice_broker
