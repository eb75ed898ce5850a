#include "voice_broker/openai_client.hpp"

#include "openai_replies.hpp"
#include "voice_broker/ascii.hpp"
#include "voice_broker/metrics.hpp"
#include "voice_broker/realtime_call_id.hpp"

#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <random>
#include <thread>

namespace voice_broker {

namespace {

using clock_type = std::chrono::steady_clock;

struct job {
    std::string method_path;  // for logs: "POST /v1/realtime/client_secrets"
    std::string url;
    std::string content_type;  // empty: multipart (mime)
    std::string body;
    std::string sdp;           // multipart parts
    std::string session_json;
    int attempt = 0;
    // False for POST /v1/realtime/calls: once sent it is never repeated (a second attempt could
    // open a second billed call), and it never rides a reused connection, on which libcurl
    // itself would resend a request that met a connection closed under it.
    bool may_repeat = true;
    clock_type::time_point deadline;
    clock_type::time_point not_before;
    std::function<void(upstream_reply)> done;
    // transfer state
    CURL* easy = nullptr;
    curl_mime* mime = nullptr;
    curl_slist* headers = nullptr;
    upstream_reply reply;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
    auto* j = static_cast<job*>(user);
    constexpr std::size_t max_body = 256 * 1024;
    if (j->reply.body.size() + size * n > max_body) return 0;  // refuse a runaway body
    j->reply.body.append(data, size * n);
    return size * n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
    auto* j = static_cast<job*>(user);
    std::string_view line(data, size * n);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return size * n;
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = to_lower_ascii(c);
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
    if (name == "content-type") j->reply.content_type = value;
    else if (name == "location") j->reply.location = value;
    else if (name == "x-request-id") j->reply.request_id = value;
    else if (name == "retry-after") j->reply.retry_after = value;
    else if (name == "retry-after-ms") j->reply.retry_after_ms = value;
    else if (name == "x-should-retry") j->reply.should_retry = value;
    return size * n;
}

class openai_client final : public realtime_upstream {
public:
    openai_client(openai_settings settings, metrics& stats)
        : settings_(std::move(settings)), metrics_(stats), multi_(curl_multi_init()), rng_(std::random_device{}()) {
        if (!multi_) throw std::runtime_error("cannot initialise libcurl");
        curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
        worker_ = std::thread([this] { run(); });
    }

    ~openai_client() override {
        close();
        for (auto* e : idle_handles_) curl_easy_cleanup(e);
        curl_multi_cleanup(multi_);
    }

    void close() override {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
            stopping_ = true;
            // Hang-ups already asked for still go out, within a short drain.
            drain_deadline_ = clock_type::now() + std::chrono::seconds{3};
        }
        curl_multi_wakeup(multi_);
        if (worker_.joinable()) worker_.join();
    }

    void mint_token(std::chrono::seconds ttl, std::function<void(http_response)> done) override {
        mint(ttl, [done = std::move(done)](mint_result r) { done(std::move(r.response)); });
    }

    void mint(std::chrono::seconds ttl, std::function<void(mint_result)> done) override {
        nlohmann::json body = {{"expires_after", {{"anchor", "created_at"}, {"seconds", ttl.count()}}},
                               {"session", session_config()}};
        auto j = std::make_unique<job>();
        j->method_path = "POST /v1/realtime/client_secrets";
        j->url = settings_.base_url + "/v1/realtime/client_secrets";
        j->content_type = "application/json";
        j->body = body.dump();
        const auto started = clock_type::now();
        j->done = [this, done = std::move(done), started](upstream_reply r) {
            metrics_.mint_latency_seconds.observe(std::chrono::duration<double>(clock_type::now() - started).count());
            done(mint_answer(r, settings_, metrics_));
        };
        submit(std::move(j));
    }

    void relay_offer(std::string sdp_offer, std::function<void(call_result)> done) override {
        const auto session = session_config();
        auto j = std::make_unique<job>();
        j->method_path = "POST /v1/realtime/calls";
        j->url = settings_.base_url + "/v1/realtime/calls";
        j->sdp = std::move(sdp_offer);
        j->session_json = session.dump();
        j->may_repeat = false;
        j->done = [this, done = std::move(done)](upstream_reply r) { done(relay_answer(r, settings_, metrics_)); };
        submit(std::move(j));
    }

    void hang_up(std::string call_id) override {
        if (!is_valid_call_id(call_id)) {  // it would go into the URL
            metrics_.hangups_failed.fetch_add(1, std::memory_order_relaxed);
            spdlog::error("openai: refusing to hang up a call id that is not valid ({} characters)", call_id.size());
            return;
        }
        auto j = std::make_unique<job>();
        j->method_path = "POST /v1/realtime/calls/" + call_id + "/hangup";
        j->url = settings_.base_url + "/v1/realtime/calls/" + call_id + "/hangup";
        j->content_type = "application/json";
        j->body = "{}";
        j->done = [this, call_id](upstream_reply r) {
            if (r.transport == CURLE_OK && r.status >= 200 && r.status < 300) {
                spdlog::info("openai: hung up call {}", call_id);
            } else {
                metrics_.hangups_failed.fetch_add(1, std::memory_order_relaxed);
                spdlog::error("openai: hang-up of call {} failed: {}", call_id,
                              r.transport != CURLE_OK ? curl_easy_strerror(r.transport) : std::to_string(r.status));
            }
        };
        submit(std::move(j));
    }

private:
    // The Realtime session both modes ask for (GA shape: the voice lives in audio.output).
    nlohmann::json session_config() const {
        nlohmann::json audio = {{"output", {{"voice", settings_.voice}}}};
        if (!settings_.transcription_model.empty()) {
            audio["input"] = {{"transcription", {{"model", settings_.transcription_model}}}};
        }
        nlohmann::json session = {
            {"type", "realtime"}, {"model", settings_.model}, {"instructions", settings_.instructions}, {"audio", audio}};
        if (settings_.max_output_tokens) session["max_output_tokens"] = *settings_.max_output_tokens;
        return session;
    }

    void submit(std::unique_ptr<job> j) {
        j->deadline = clock_type::now() + settings_.timeout;
        j->not_before = clock_type::now();
        {
            std::lock_guard lock(mutex_);
            if (worker_done_) return;  // closed: nothing more goes out
            incoming_.push_back(std::move(j));
        }
        curl_multi_wakeup(multi_);
    }

    CURL* take_handle() {
        if (!idle_handles_.empty()) {
            auto* e = idle_handles_.back();
            idle_handles_.pop_back();
            curl_easy_reset(e);
            return e;
        }
        return curl_easy_init();
    }

    void start(job& j) {
        j.reply = {};
        j.easy = take_handle();
        auto* e = j.easy;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(j.deadline - clock_type::now());
        curl_easy_setopt(e, CURLOPT_URL, j.url.c_str());
        curl_easy_setopt(e, CURLOPT_PRIVATE, &j);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, std::max<long>(1, static_cast<long>(left.count())));
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, std::min<long>(5000, std::max<long>(1, static_cast<long>(left.count()))));
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        if (!j.may_repeat) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        if (!settings_.ca_bundle.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, settings_.ca_bundle.c_str());
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &j);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, &j);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "voice-broker/" VOICE_BROKER_VERSION);
        const std::string auth = "Authorization: Bearer " + settings_.api_key;
        j.headers = curl_slist_append(nullptr, auth.c_str());
        j.headers = curl_slist_append(j.headers, "Expect:");
        if (!j.content_type.empty()) {
            j.headers = curl_slist_append(j.headers, ("Content-Type: " + j.content_type).c_str());
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, j.body.data());
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(j.body.size()));
        } else {
            j.mime = curl_mime_init(e);
            auto* part = curl_mime_addpart(j.mime);
            curl_mime_name(part, "sdp");
            curl_mime_data(part, j.sdp.data(), j.sdp.size());
            curl_mime_type(part, "application/sdp");
            part = curl_mime_addpart(j.mime);
            curl_mime_name(part, "session");
            curl_mime_data(part, j.session_json.data(), j.session_json.size());
            curl_mime_type(part, "application/json");
            curl_easy_setopt(e, CURLOPT_MIMEPOST, j.mime);
        }
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, j.headers);
        curl_multi_add_handle(multi_, e);
    }

    void release(job& j) {
        curl_multi_remove_handle(multi_, j.easy);
        if (j.mime) curl_mime_free(j.mime);
        if (j.headers) curl_slist_free_all(j.headers);
        j.mime = nullptr;
        j.headers = nullptr;
        idle_handles_.push_back(j.easy);  // keeps its TLS session and CA store warm
        j.easy = nullptr;
    }

    void finished(job* j, CURLcode rc) {
        curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &j->reply.status);
        j->reply.transport = rc;
        release(*j);
        constexpr int max_retries = 2;  // as OpenAI's SDKs
        std::uniform_real_distribution<double> jitter(0.0, 1.0);
        const auto decision = decide_retry(j->reply, j->may_repeat, j->attempt, jitter(rng_), std::chrono::system_clock::now());
        if (decision.retry && j->attempt < max_retries) {
            const auto at = clock_type::now() + decision.wait;
            if (at < j->deadline) {  // a wait beyond OPENAI_TIMEOUT_SECONDS is not waited for
                spdlog::warn("openai: {} answered {}; retry {} of {}", j->method_path,
                             j->reply.transport != CURLE_OK ? curl_easy_strerror(j->reply.transport)
                                                            : std::to_string(j->reply.status),
                             j->attempt + 1, max_retries);
                ++j->attempt;
                j->not_before = at;
                return;  // stays in active_, started again when due
            }
        }
        auto reply = std::move(j->reply);
        auto done = std::move(j->done);
        std::erase_if(active_, [j](const std::unique_ptr<job>& p) { return p.get() == j; });
        done(std::move(reply));
    }

    void run() {
        while (true) {
            {
                std::lock_guard lock(mutex_);
                for (auto& j : incoming_) active_.push_back(std::move(j));
                incoming_.clear();
                if (stopping_ && (active_.empty() || clock_type::now() >= drain_deadline_)) {
                    worker_done_ = true;
                    break;
                }
            }
            const auto now = clock_type::now();
            for (auto& j : active_) {
                if (!j->easy && j->not_before <= now) start(*j);
            }
            int running = 0;
            curl_multi_perform(multi_, &running);
            int left = 0;
            while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
                if (msg->msg != CURLMSG_DONE) continue;
                job* j = nullptr;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &j);
                finished(j, msg->data.result);
            }
            // After finished(): a retry it just scheduled must wake the poll when it is due, not
            // a second later.
            const auto after = clock_type::now();
            auto wait = std::chrono::milliseconds{1000};
            for (auto& j : active_) {
                if (j->easy) continue;
                wait = std::min(wait, j->not_before <= after ? std::chrono::milliseconds{0}
                                                             : std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                   j->not_before - after) + std::chrono::milliseconds{1});
            }
            curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait.count()), nullptr);
        }
        for (auto& j : active_) {
            if (j->easy) release(*j);
            j->reply.transport = CURLE_ABORTED_BY_CALLBACK;
            if (j->done) j->done(std::move(j->reply));
        }
        active_.clear();
    }

    openai_settings settings_;
    metrics& metrics_;
    CURLM* multi_;
    std::mt19937 rng_;
    std::thread worker_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<job>> incoming_;
    bool stopping_ = false;
    bool worker_done_ = false;  // the worker has left its loop: submissions are dropped
    clock_type::time_point drain_deadline_{};
    // Worker-thread only:
    std::vector<std::unique_ptr<job>> active_;
    std::vector<CURL*> idle_handles_;
};

}  // namespace

std::shared_ptr<realtime_upstream> make_openai_client(const openai_settings& settings, metrics& stats) {
    return std::make_shared<openai_client>(settings, stats);
}

}  // namespace voice_broker
