// admin_auth: who may use the admin API.  The ADMIN_TOKEN, compared in constant time; the logins
// the console's sign-in made (a random login id in an HttpOnly cookie, never the token), which
// last LOGIN_SECONDS from their last authenticated request; and the per-address throttle of
// wrong tokens, shared by the console's sign-in, the x-admin-token header and forceEndAll.
// Thread-safe: the router checks a WebSocket's credentials on an I/O thread, the service the
// rest on its strand.
#pragma once

#include "voice_broker/auth_throttle.hpp"
#include "voice_broker/time.hpp"

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace voice_broker {

inline constexpr std::string_view admin_cookie = "vb_admin";

class admin_auth {
public:
    // `login_lifetime`: ADMIN_LOGIN_SECONDS, from a login's last authenticated request.
    explicit admin_auth(std::string token, std::chrono::seconds login_lifetime = std::chrono::seconds{900})
        : token_(std::move(token)), lifetime_(login_lifetime) {}

    std::chrono::seconds login_lifetime() const { return lifetime_; }

    void set_token(std::string token);  // SIGHUP; a changed token ends every login
    bool enabled() const;

    struct verdict {
        enum class kind { ok, disabled, throttled, unauthorized };
        kind what = kind::unauthorized;
        std::int64_t retry_after = 0;  // throttled
        std::string login_id;          // ok, through a login: its id (for the cookie's renewal)
        bool by_header = false;        // ok, through x-admin-token
        // The first characters of the login id, for the audit line ("-" for the header).
        std::string short_login() const { return by_header || login_id.size() < 6 ? "-" : login_id.substr(0, 6); }
    };

    // The sign-in: a right token makes a new login.
    verdict login(std::string_view given_token, const std::string& address, steady_time now);
    // A request's credentials: the login cookie (renewed when `renew`), else the header token.
    verdict check(const std::optional<std::string>& login_cookie, std::string_view header_token, const std::string& address,
                  steady_time now, bool renew);
    void logout(const std::string& login_id);
    // Seconds left of a login; nullopt when it is not (any more) valid.
    std::optional<std::int64_t> seconds_left(const std::string& login_id, steady_time now) const;
    // Whether a login is still valid (a console's WebSocket asks every second).
    bool valid(const std::string& login_id, steady_time now) const { return seconds_left(login_id, now).has_value(); }

private:
    bool token_matches(std::string_view given) const;
    void forget_expired(steady_time now);

    mutable std::mutex mutex_;
    std::string token_;
    std::chrono::seconds lifetime_;
    std::unordered_map<std::string, steady_time> logins_;  // id -> expiry
    auth_throttle throttle_;
    static constexpr std::size_t max_logins = 1000;
};

// The Set-Cookie value for a login lasting `lifetime` (or, with an empty id, its removal).
std::string admin_cookie_header(const std::string& login_id, bool secure, std::chrono::seconds lifetime);

}  // namespace voice_broker
