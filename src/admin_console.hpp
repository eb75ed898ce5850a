// admin_console: the operator's side of the session service (docs/API.md, "Admin API").  It
// runs the admin calls against the store (with admin_auth's credentials and the audit line of
// each action), keeps the console's live channels, and pushes them the state document on every
// change and once a second while sessions run; a console whose login ended is closed with 4401.
// It lives on the service's strand, owned by the service, and shares its store.
#pragma once

#include "voice_broker/admin_api.hpp"
#include "voice_broker/admin_auth.hpp"
#include "voice_broker/config.hpp"
#include "voice_broker/responder.hpp"
#include "voice_broker/session_service.hpp"
#include "voice_broker/session_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <vector>

namespace voice_broker {

class metrics;

class admin_console {
public:
    struct hooks {
        std::function<steady_time()> clock;
        // Today's use as stats shows it, given the store's own count (redis) and the running minutes.
        std::function<usage_today(const std::optional<shared_usage>&, std::chrono::milliseconds running)> today;
        // Something the operator changed that the visitors' pushes must show (pause, limits).
        std::function<void()> rules_changed;
        // The cost guard's part of the state (admin_context's cost fields).
        std::function<void(admin_context&)> add_cost;
    };

    admin_console(const boost::asio::any_io_executor& strand, session_store& store, std::shared_ptr<admin_auth> auth,
                  const config& settings, const wall_clock_mapping& wall_clock, metrics& counters, hooks h);
    ~admin_console();

    void handle(const http_request& req, responder respond);
    void open_channel(channel_id id, const std::string& login_id, std::shared_ptr<live_channel> channel);
    bool close_channel(channel_id id);  // false when it is not a console's
    void close_all(live_channel::close_reason why);

    // Something changed in the shared state: the consoles get a fresh state soon.
    void note_change();
    // An upstream answer (minting a key, relaying an offer): for the console's health view.
    void note_upstream(unsigned status, std::string code, std::chrono::milliseconds latency);
    void reload(const config& settings);

private:
    struct console_channel {
        channel_id id;
        std::string login_id;  // empty: opened with the header token
        std::shared_ptr<live_channel> channel;
    };

    void run(const http_request& req, const admin_call& call, const admin_auth::verdict& who, responder respond);
    void answer_state(responder respond);
    void build_state(std::function<void(store_error, std::string)> done);
    void audit(const char* action, const std::string& target, const http_request& req, const admin_auth::verdict& who) const;
    void push_state();
    void arm_tick();
    admin_context context() const;

    boost::asio::any_io_executor strand_;
    session_store& store_;
    std::shared_ptr<admin_auth> auth_;
    config settings_;
    wall_clock_mapping wall_clock_;
    metrics& metrics_;
    hooks hooks_;
    boost::asio::steady_timer tick_;
    std::shared_ptr<bool> alive_;
    std::vector<console_channel> channels_;
    bool dirty_ = false, building_ = false, ticking_ = false;
    // Upstream health: the last error, and the latencies of the last 5 minutes.
    admin_context::upstream_health upstream_;
    std::deque<std::pair<steady_time, double>> latencies_;
};

}  // namespace voice_broker
