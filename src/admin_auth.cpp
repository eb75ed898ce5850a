#include "voice_broker/admin_auth.hpp"

#include "voice_broker/secure_equals.hpp"
#include "voice_broker/ticket.hpp"

namespace voice_broker {

void admin_auth::set_token(std::string token) {
    std::lock_guard lock(mutex_);
    if (token != token_) logins_.clear();
    token_ = std::move(token);
}

bool admin_auth::enabled() const {
    std::lock_guard lock(mutex_);
    return !token_.empty();
}

bool admin_auth::token_matches(std::string_view given) const { return !given.empty() && secure_equals(given, token_); }

admin_auth::verdict admin_auth::login(std::string_view given_token, const std::string& address, steady_time now) {
    std::lock_guard lock(mutex_);
    verdict v;
    if (token_.empty()) {
        v.what = verdict::kind::disabled;
        return v;
    }
    if (const auto wait = throttle_.retry_after(address, now); wait > 0) {
        v.what = verdict::kind::throttled;
        v.retry_after = wait;
        return v;
    }
    if (!token_matches(given_token)) {
        throttle_.record_failure(address, now);
        return v;
    }
    forget_expired(now);
    if (logins_.size() >= max_logins) logins_.erase(logins_.begin());  // the oldest does not matter: bounded
    v.what = verdict::kind::ok;
    v.login_id = make_ticket();  // 128 random bits, base64url
    logins_[v.login_id] = now + lifetime_;
    return v;
}

admin_auth::verdict admin_auth::check(const std::optional<std::string>& login_cookie, std::string_view header_token,
                                      const std::string& address, steady_time now, bool renew) {
    std::lock_guard lock(mutex_);
    verdict v;
    if (token_.empty()) {
        v.what = verdict::kind::disabled;
        return v;
    }
    if (login_cookie) {
        const auto it = logins_.find(*login_cookie);
        if (it != logins_.end() && now < it->second) {
            if (renew) it->second = now + lifetime_;
            v.what = verdict::kind::ok;
            v.login_id = it->first;
            return v;
        }
    }
    if (header_token.empty()) return v;  // unauthorized; a stale cookie is no guess at the token
    if (const auto wait = throttle_.retry_after(address, now); wait > 0) {
        v.what = verdict::kind::throttled;
        v.retry_after = wait;
        return v;
    }
    if (!token_matches(header_token)) {
        throttle_.record_failure(address, now);
        return v;
    }
    v.what = verdict::kind::ok;
    v.by_header = true;
    return v;
}

void admin_auth::logout(const std::string& login_id) {
    std::lock_guard lock(mutex_);
    logins_.erase(login_id);
}

std::optional<std::int64_t> admin_auth::seconds_left(const std::string& login_id, steady_time now) const {
    std::lock_guard lock(mutex_);
    const auto it = logins_.find(login_id);
    if (it == logins_.end() || now >= it->second) return std::nullopt;
    return seconds_until(now, it->second);
}

void admin_auth::forget_expired(steady_time now) {
    for (auto it = logins_.begin(); it != logins_.end();) {
        if (now >= it->second) it = logins_.erase(it);
        else ++it;
    }
}

std::string admin_cookie_header(const std::string& login_id, bool secure, std::chrono::seconds lifetime) {
    std::string out(admin_cookie);
    out += '=';
    out += login_id;
    out += "; Path=/; HttpOnly; SameSite=Strict; Max-Age=";
    out += login_id.empty() ? "0" : std::to_string(lifetime.count());
    if (secure) out += "; Secure";
    return out;
}

}  // namespace voice_broker
