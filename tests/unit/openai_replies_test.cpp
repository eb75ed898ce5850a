// Unit tests for openai_replies and realtime_call_id: which answers are retried and after how
// long (OpenAI's SDK rules, stricter where a retry could cost money), insufficient_quota, call
// ids from Location (with a query or fragment) and the orphan call of a refused answer.
#include "openai_replies.hpp"

#include "voice_broker/metrics.hpp"
#include "voice_broker/realtime_call_id.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace voice_broker {
namespace {

using namespace std::chrono_literals;

const auto now = std::chrono::system_clock::time_point{std::chrono::seconds{1796137200}};  // 2026-12-01T15:00:00Z

upstream_reply answer(long status, std::string body = "{}") {
    upstream_reply r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

const std::string quota_body =
    R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})";
const std::string credit_body =
    R"({"error":{"message":"You have no credits remaining.","type":"insufficient_quota","param":null,"code":"credit_balance_exhausted"}})";
const std::string rate_body = R"({"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}})";

TEST(openai_replies, insufficient_quota_is_recognised_by_type_or_code) {
    EXPECT_TRUE(is_quota_exhausted(answer(429, quota_body)));
    EXPECT_TRUE(is_quota_exhausted(answer(429, credit_body)));
    EXPECT_TRUE(is_quota_exhausted(answer(429, R"({"error":{"type":"x","code":"insufficient_quota"}})")));
    EXPECT_FALSE(is_quota_exhausted(answer(429, rate_body)));
    EXPECT_FALSE(is_quota_exhausted(answer(400, quota_body))) << "only a 429";
    EXPECT_FALSE(is_quota_exhausted(answer(429, "not json")));
}

TEST(openai_replies, statuses_the_sdks_retry) {
    for (long status : {408L, 409L, 429L, 500L, 502L, 503L}) {
        EXPECT_TRUE(decide_retry(answer(status), true, 0, 0, now).retry) << status;
    }
    for (long status : {400L, 401L, 403L, 404L, 422L}) {
        EXPECT_FALSE(decide_retry(answer(status), true, 0, 0, now).retry) << status;
    }
}

TEST(openai_replies, x_should_retry_overrides_the_status) {
    auto r = answer(503);
    r.should_retry = "false";
    EXPECT_FALSE(decide_retry(r, true, 0, 0, now).retry);
    r = answer(400);
    r.should_retry = "true";
    EXPECT_TRUE(decide_retry(r, true, 0, 0, now).retry);
    r = answer(503);
    r.should_retry = "TRUE";  // only the exact values count, as in the SDKs
    EXPECT_TRUE(decide_retry(r, true, 0, 0, now).retry) << "falls back to the status";
}

TEST(openai_replies, insufficient_quota_is_never_retried_even_when_the_server_says_so) {
    auto r = answer(429, quota_body);
    r.should_retry = "true";
    EXPECT_FALSE(decide_retry(r, true, 0, 0, now).retry);
}

TEST(openai_replies, the_calls_request_is_never_repeated_once_it_may_have_arrived) {
    auto r = answer(503);
    r.should_retry = "true";
    EXPECT_FALSE(decide_retry(r, false, 0, 0, now).retry);
    EXPECT_FALSE(decide_retry(answer(429, rate_body), false, 0, 0, now).retry);
    for (auto code : {CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_OPERATION_TIMEDOUT}) {
        upstream_reply t;
        t.transport = code;
        EXPECT_FALSE(decide_retry(t, false, 0, 0, now).retry) << curl_easy_strerror(code);
    }
    upstream_reply refused;
    refused.transport = CURLE_COULDNT_CONNECT;
    EXPECT_TRUE(decide_retry(refused, false, 0, 0, now).retry) << "no connection: nothing was sent";
    upstream_reply dropped;
    dropped.transport = CURLE_GOT_NOTHING;
    EXPECT_TRUE(decide_retry(dropped, true, 0, 0, now).retry) << "other requests may be repeated";
}

TEST(openai_replies, the_wait_is_retry_after_ms_then_retry_after_then_backoff) {
    auto r = answer(429);
    r.retry_after_ms = "250";
    r.retry_after = "30";
    EXPECT_EQ(decide_retry(r, true, 0, 0, now).wait, 250ms);
    r.retry_after_ms = "12.9";
    EXPECT_EQ(decide_retry(r, true, 0, 0, now).wait, 12ms);
    r.retry_after_ms = "soon";
    EXPECT_EQ(decide_retry(r, true, 0, 0, now).wait, 30s) << "an unreadable retry-after-ms falls through";
    r.retry_after_ms = "0";
    EXPECT_EQ(decide_retry(r, true, 0, 0, now).wait, 30s) << "openai-node: a zero retry-after-ms falls through";
    r.retry_after_ms.clear();
    r.retry_after = "1.5";
    EXPECT_EQ(decide_retry(r, true, 0, 0, now).wait, 1500ms);
    r.retry_after = "Tue, 01 Dec 2026 15:00:07 GMT";
    EXPECT_EQ(decide_retry(r, true, 0, 0, now).wait, 7s) << "an HTTP date";
    r.retry_after = "Tue, 01 Dec 2026 14:00:00 GMT";
    EXPECT_EQ(decide_retry(r, true, 0, 0, now).wait, 0ms) << "a date in the past: at once";
    r.retry_after.clear();
    // min(0.5 s x 2^n, 8 s) x (1 - 0.25 x jitter)
    EXPECT_EQ(decide_retry(r, true, 0, 0.0, now).wait, 500ms);
    EXPECT_EQ(decide_retry(r, true, 1, 0.0, now).wait, 1000ms);
    EXPECT_EQ(decide_retry(r, true, 1, 0.999, now).wait, 750ms);
    EXPECT_EQ(decide_retry(r, true, 10, 0.0, now).wait, 8000ms);
}

TEST(realtime_call_id, accepts_the_real_and_the_fakes_ids_only) {
    EXPECT_TRUE(is_valid_call_id("rtc_u2_AbCdEfGhIjKlMnOpQrStUv"));
    EXPECT_TRUE(is_valid_call_id("rtc_0123456789abcdef0123456789abcdef"));
    EXPECT_TRUE(is_valid_call_id("rtc_a-b_c"));
    for (const char* bad : {"", "rtc_", "rtc", "call_123", "rtc_a/b", "rtc_../x", "rtc_a?b=1", "rtc_a#x", "rtc_a%2F",
                            "rtc_a b", "rtc_a.b", "RTC_abc", "rtc_é"}) {
        EXPECT_FALSE(is_valid_call_id(bad)) << bad;
    }
    EXPECT_TRUE(is_valid_call_id("rtc_" + std::string(124, 'a')));
    EXPECT_FALSE(is_valid_call_id("rtc_" + std::string(125, 'a')));
}

TEST(realtime_call_id, reads_the_id_from_any_form_of_location) {
    EXPECT_EQ(call_id_from_location("/v1/realtime/calls/rtc_abc"), "rtc_abc");
    EXPECT_EQ(call_id_from_location("https://api.openai.com/v1/realtime/calls/rtc_u2_x"), "rtc_u2_x");
    EXPECT_EQ(call_id_from_location("/v1/realtime/calls/rtc_abc?model=gpt-realtime&intent=call"), "rtc_abc");
    EXPECT_EQ(call_id_from_location("/v1/realtime/calls/rtc_abc#frag?x=/y"), "rtc_abc");
    EXPECT_EQ(call_id_from_location("/v1/realtime/calls/rtc_abc/"), "rtc_abc");
    EXPECT_EQ(call_id_from_location("/v1/realtime/calls/rtc_abc?next=/v1/realtime/calls/rtc_evil"), "rtc_abc");
    EXPECT_EQ(call_id_from_location("/v1/realtime/calls/"), std::nullopt);
    EXPECT_EQ(call_id_from_location("/v1/realtime/calls/rtc_a%2F..%2Fx"), std::nullopt);
    EXPECT_EQ(call_id_from_location("/v1/realtime/sessions/rtc_abc"), std::nullopt) << "not under calls";
    EXPECT_EQ(call_id_from_location("rtc_abc"), std::nullopt);
    EXPECT_EQ(call_id_from_location(""), std::nullopt);
}

const std::string sdp_answer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

TEST(openai_replies, a_good_relay_answer_gives_the_call_id_even_as_text_plain) {
    metrics m;
    openai_settings s;
    auto r = answer(201, sdp_answer);
    r.content_type = "text/plain; charset=utf-8";
    r.location = "/v1/realtime/calls/rtc_u2_abc?model=gpt-realtime";
    const auto out = relay_answer(r, s, m);
    EXPECT_EQ(out.response.status, 201u);
    EXPECT_EQ(out.response.header("content-type"), "application/sdp");
    EXPECT_EQ(out.call_id, "rtc_u2_abc");
    EXPECT_EQ(out.orphan_call_id, std::nullopt);
    EXPECT_FALSE(out.quota_exhausted);
}

TEST(openai_replies, every_refused_answer_that_names_a_call_returns_it_as_an_orphan) {
    metrics m;
    openai_settings s;
    struct odd {
        long status;
        std::string body;
        unsigned page_status;
    };
    for (const auto& o : {odd{201, "<html><body>502 Bad Gateway</body></html>", 502}, odd{201, "", 502},
                          odd{201, R"({"id":"rtc_x","status":"created"})", 502},
                          odd{500, R"({"error":{"message":"boom","type":"server_error","param":null,"code":null}})", 502},
                          odd{200, sdp_answer, 502}}) {
        auto r = answer(o.status, o.body);
        r.location = "/v1/realtime/calls/rtc_orphan";
        const auto out = relay_answer(r, s, m);
        EXPECT_EQ(out.response.status, o.page_status) << o.status << " " << o.body;
        EXPECT_EQ(out.call_id, std::nullopt);
        EXPECT_EQ(out.orphan_call_id, "rtc_orphan") << o.status << " " << o.body;
    }
    // A Location whose id is not valid is never used (it would go into the hang-up URL).
    auto r = answer(201, sdp_answer);
    r.location = "/v1/realtime/calls/rtc_a%2F..%2Fx";
    const auto out = relay_answer(r, s, m);
    EXPECT_EQ(out.response.status, 502u);
    EXPECT_EQ(out.call_id, std::nullopt);
    EXPECT_EQ(out.orphan_call_id, std::nullopt);
}

TEST(openai_replies, insufficient_quota_is_503_upstream_quota_for_both_endpoints) {
    metrics m;
    openai_settings s;
    const auto mint = mint_answer(answer(429, quota_body), s, m);
    EXPECT_EQ(mint.response.status, 503u);
    EXPECT_EQ(nlohmann::json::parse(mint.response.body)["error"]["code"], "upstream_quota");
    EXPECT_NE(mint.response.body.find("out of credit"), std::string::npos);
    EXPECT_TRUE(mint.quota_exhausted);
    const auto relay = relay_answer(answer(429, credit_body), s, m);
    EXPECT_EQ(relay.response.status, 503u);
    EXPECT_EQ(nlohmann::json::parse(relay.response.body)["error"]["code"], "upstream_quota");
    EXPECT_TRUE(relay.quota_exhausted);
    const auto limited = mint_answer(answer(429, rate_body), s, m);
    EXPECT_EQ(nlohmann::json::parse(limited.response.body)["error"]["code"], "upstream_rate_limited");
    EXPECT_FALSE(limited.quota_exhausted);
}

}  // namespace
}  // namespace voice_broker
