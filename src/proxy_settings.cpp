#include "voice_broker/proxy_settings.hpp"

#include "voice_broker/ascii.hpp"
#include "voice_broker/ip_network.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <vector>

namespace voice_broker {

namespace {

std::string percent_decode(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size()) {
            int v = 0;
            const auto [p, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
            if (ec == std::errc{} && p == in.data() + i + 3) {
                out += static_cast<char>(v);
                i += 2;
                continue;
            }
        }
        out += in[i];
    }
    return out;
}

std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

struct parsed_proxy {
    std::optional<proxy_endpoint> endpoint;
    std::optional<std::string> problem;
};

parsed_proxy parse_proxy(std::string_view url, const char* name) {
    parsed_proxy out;
    if (url.empty()) return out;
    std::string_view rest = url;
    if (const auto scheme_end = rest.find("://"); scheme_end != std::string_view::npos) {
        const auto scheme = lower_ascii(rest.substr(0, scheme_end));
        if (scheme != "http") {
            out.problem = std::string(name) + " uses " + scheme + "://, which the sideband cannot use (only http:// proxies)";
            return out;
        }
        rest.remove_prefix(scheme_end + 3);
    }
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
    proxy_endpoint p;
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        const auto userinfo = rest.substr(0, at);
        rest.remove_prefix(at + 1);
        const auto colon = userinfo.find(':');
        const auto user = percent_decode(userinfo.substr(0, colon));
        const auto pass = colon == std::string_view::npos ? std::string{} : percent_decode(userinfo.substr(colon + 1));
        p.authorization = "Basic " + base64(user + ":" + pass);
    }
    std::string_view host = rest;
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') {  // [::1]:3128
        const auto close = rest.find(']');
        if (close == std::string_view::npos) {
            out.problem = std::string(name) + " has an unterminated [IPv6] host";
            return out;
        }
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty()) {
        out.problem = std::string(name) + " names no proxy host";
        return out;
    }
    p.host = std::string(host);
    if (!port.empty()) {
        unsigned v = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
        if (ec != std::errc{} || end != port.data() + port.size() || v == 0 || v > 65535) {
            out.problem = std::string(name) + " has an invalid port";
            return out;
        }
        p.port = static_cast<std::uint16_t>(v);
    }
    out.endpoint = std::move(p);
    return out;
}

}  // namespace

proxy_settings proxy_settings::from_environment(const getenv_fn& getenv) {
    auto first = [&getenv](std::initializer_list<const char*> names) {
        for (const char* n : names) {
            if (auto v = getenv(n); v && !v->empty()) return *v;
        }
        return std::string{};
    };
    return from_values(first({"https_proxy", "HTTPS_PROXY"}), first({"http_proxy"}), first({"no_proxy", "NO_PROXY"}));
}

proxy_settings proxy_settings::from_values(std::string https_proxy, std::string http_proxy, std::string no_proxy) {
    proxy_settings p;
    p.https_proxy_ = std::move(https_proxy);
    p.http_proxy_ = std::move(http_proxy);
    p.no_proxy_ = std::move(no_proxy);
    return p;
}

bool proxy_settings::bypassed(std::string_view host) const {
    std::string h = lower_ascii(host);
    if (!h.empty() && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    while (!h.empty() && h.back() == '.') h.pop_back();
    const bool host_is_ip = parse_ip(h).has_value();
    std::string_view list = no_proxy_;
    while (!list.empty()) {
        const auto comma = list.find_first_of(", ");
        auto entry = lower_ascii(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        if (entry.empty()) continue;
        if (entry == "*") return true;
        if (host_is_ip) {
            if (auto net = ip_network::parse(entry); net && net->contains(h)) return true;
            continue;
        }
        if (const auto colon = entry.find(':'); colon != std::string::npos && entry.find(':', colon + 1) == std::string::npos) {
            entry = entry.substr(0, colon);  // host:port, as libcurl allows; the port is not compared
        }
        while (!entry.empty() && entry.front() == '.') entry.erase(0, 1);
        while (!entry.empty() && entry.back() == '.') entry.pop_back();
        if (entry.empty()) continue;
        if (h == entry) return true;
        if (h.size() > entry.size() && h.compare(h.size() - entry.size(), entry.size(), entry) == 0 &&
            h[h.size() - entry.size() - 1] == '.') {
            return true;
        }
    }
    return false;
}

std::optional<proxy_endpoint> proxy_settings::for_target(bool tls, std::string_view host) const {
    const auto& url = tls ? https_proxy_ : http_proxy_;
    if (url.empty() || bypassed(host)) return std::nullopt;
    return parse_proxy(url, tls ? "HTTPS_PROXY" : "http_proxy").endpoint;
}

std::optional<std::string> proxy_settings::problem(bool tls) const {
    const auto& url = tls ? https_proxy_ : http_proxy_;
    if (url.empty()) return std::nullopt;
    return parse_proxy(url, tls ? "HTTPS_PROXY" : "http_proxy").problem;
}

}  // namespace voice_broker
