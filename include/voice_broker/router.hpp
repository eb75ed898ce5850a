// router: maps a request to its answer.  Static files, health and metrics are answered at once
// from immutable or atomic state, and so is session stats while the service's published copy is
// fresh; the rest of /api/session goes to the session service.  It never touches a socket, and
// it sets no transport headers: the session edge adds those in one place.
#pragma once

#include "voice_broker/http_message.hpp"
#include "voice_broker/time.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <string_view>

namespace voice_broker {

class metrics;
class session_service;
class static_files;

inline constexpr std::string_view live_channel_path = "/api/session/ws";

class router {
public:
    router(std::shared_ptr<session_service> service, metrics& stats, std::shared_ptr<const static_files> files);

    // `respond` is called exactly once, on any thread.
    void handle(http_request req, std::function<void(http_response)> respond) const;

    void replace_static_files(std::shared_ptr<const static_files> files) { files_.store(std::move(files)); }
    void set_shutting_down() { shutting_down_.store(true); }

    // Answers that need no state: the health document.
    http_response health() const;

private:
    std::shared_ptr<session_service> service_;
    metrics& metrics_;
    std::atomic<std::shared_ptr<const static_files>> files_;
    std::atomic<bool> shutting_down_{false};
    steady_time started_at_;
};

}  // namespace voice_broker
