#include "voice_broker/healthcheck.hpp"

#include <curl/curl.h>

#include <string>

namespace voice_broker {

namespace {
std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
    auto* body = static_cast<std::string*>(out);
    if (body->size() < 4096) body->append(data, size * n);
    return size * n;
}
}  // namespace

int run_healthcheck(const config& c, std::string& detail) {
    std::string host = c.host;
    if (host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    const auto url = std::string(c.tls_enabled() ? "https" : "http") + "://" + host + ":" + std::to_string(c.port) +
                     "/api/health";
    CURL* curl = curl_easy_init();
    if (!curl) {
        detail = "cannot initialise libcurl";
        return 1;
    }
    std::string body;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    // Our own certificate may be self-signed or issued for the public name, not 127.0.0.1.
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    const auto rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
        detail = url + ": " + curl_easy_strerror(rc);
        return 1;
    }
    detail = url + ": " + std::to_string(status) + " " + body;
    return status == 200 ? 0 : 1;
}

}  // namespace voice_broker
