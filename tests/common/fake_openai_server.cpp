#include "fake_openai_server.hpp"

#include <csignal>
#include <regex>
#include <stdexcept>

namespace voice_broker::testing {

const std::string dummy_sdp_offer =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n";

namespace {

std::vector<std::string> fake_args(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"node", source_dir() + "/tests/fakes/fake-openai/server.mjs", "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

}  // namespace

fake_openai_server::fake_openai_server(const std::vector<std::string>& extra_args, std::string scheme)
    : proc_("/usr/bin/env", fake_args(extra_args),
            {{"FAKE_OPENAI_KEY", fake_openai_key}, {"PATH", "/usr/local/bin:/usr/bin:/bin"}}, source_dir()),
      scheme_(std::move(scheme)) {
    const auto out = proc_.wait_for_output("\"listening\"", std::chrono::seconds{20});
    if (!out) throw std::runtime_error("the fake OpenAI did not start: " + proc_.output());
    std::smatch m;
    static const std::regex re(R"(\{"listening":([0-9]+)\})");
    if (!std::regex_search(*out, m, re)) throw std::runtime_error("no port from the fake: " + *out);
    port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
}

fake_openai_server::~fake_openai_server() {
    proc_.signal(SIGTERM);
    proc_.wait_exit(std::chrono::seconds{5});
}

response fake_openai_server::request(const std::string& method, const std::string& target, const std::string& body) const {
    const tls_options tls{.enabled = scheme_ == "https"};
    header_list headers;
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return fetch(port_, method, target, headers, body, tls);
}

nlohmann::json fake_openai_server::state() const { return request("GET", "/__control/state").json(); }

nlohmann::json fake_openai_server::call(const std::string& call_id) const {
    return request("GET", "/__control/calls/" + call_id).json();
}

nlohmann::json fake_openai_server::control(const std::string& path, const nlohmann::json& body) const {
    const auto r = request("POST", "/__control/" + path, body.dump());
    if (r.status < 200 || r.status >= 300) {
        throw std::runtime_error("fake control " + path + " answered " + std::to_string(r.status) + ": " + r.body);
    }
    return r.body.empty() ? nlohmann::json::object() : r.json();
}

bool fake_openai_server::wait(const std::string& query, std::chrono::milliseconds timeout) const {
    return request("GET", "/__control/wait?" + query + "&timeoutMs=" + std::to_string(timeout.count())).status == 200;
}

int fake_openai_server::count(const std::string& route) const {
    const auto s = state();
    return s["counts"].contains(route) ? s["counts"][route].get<int>() : 0;
}

std::string fake_openai_server::open_call(const nlohmann::json& session) const {
    const tls_options tls{.enabled = scheme_ == "https"};
    std::string content_type = "application/sdp";
    std::string body = dummy_sdp_offer;
    if (!session.is_null()) {
        const std::string boundary = "vb-test-boundary-7f3a";
        content_type = "multipart/form-data; boundary=" + boundary;
        body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"sdp\"\r\nContent-Type: application/sdp\r\n\r\n" +
               dummy_sdp_offer + "\r\n--" + boundary +
               "\r\nContent-Disposition: form-data; name=\"session\"\r\nContent-Type: application/json\r\n\r\n" +
               session.dump() + "\r\n--" + boundary + "--\r\n";
    }
    const auto r = fetch(port_, "POST", "/v1/realtime/calls",
                         {{"Content-Type", content_type}, {"Authorization", "Bearer " + fake_openai_key}}, body, tls);
    if (r.status != 201) throw std::runtime_error("the fake did not open a call: " + std::to_string(r.status) + " " + r.body);
    const auto location = r.header("location");
    return location.substr(location.rfind('/') + 1);
}

}  // namespace voice_broker::testing
