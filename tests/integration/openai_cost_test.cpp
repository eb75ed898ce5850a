// The upstream answers that change cost decisions, against the fake OpenAI on loopback, through
// the real openai_client (libcurl): insufficient_quota, x-should-retry and retry-after-ms as
// OpenAI's SDKs read them, POST /v1/realtime/calls never repeated, call ids from refused answers
// returned for the hang-up, Location with a query, ids validated before any URL.  "Not retried"
// is asserted on the fake's own request counts.
#include "fake_openai_server.hpp"

#include "voice_broker/metrics.hpp"
#include "voice_broker/openai_client.hpp"

#include <gtest/gtest.h>

#include <future>

using namespace voice_broker;
using namespace voice_broker::testing;
using steady = std::chrono::steady_clock;

namespace {

class upstream {
public:
    explicit upstream(const fake_openai_server& fake, std::chrono::seconds timeout = std::chrono::seconds{5},
                      std::optional<int> max_output_tokens = std::nullopt) {
        openai_settings s;
        s.api_key = fake_openai_key;
        s.base_url = fake.url();
        s.timeout = timeout;
        s.max_output_tokens = max_output_tokens;
        client_ = make_openai_client(s, counters);
    }
    ~upstream() { client_->close(); }

    realtime_upstream::mint_result mint() {
        std::promise<realtime_upstream::mint_result> done;
        auto result = done.get_future();
        client_->mint(std::chrono::seconds{60}, [&done](realtime_upstream::mint_result r) { done.set_value(std::move(r)); });
        if (result.wait_for(std::chrono::seconds{30}) != std::future_status::ready) throw std::runtime_error("mint hung");
        return result.get();
    }
    realtime_upstream::call_result relay() {
        std::promise<realtime_upstream::call_result> done;
        auto result = done.get_future();
        client_->relay_offer(dummy_sdp_offer, [&done](realtime_upstream::call_result r) { done.set_value(std::move(r)); });
        if (result.wait_for(std::chrono::seconds{30}) != std::future_status::ready) throw std::runtime_error("relay hung");
        return result.get();
    }
    void hang_up(const std::string& id) { client_->hang_up(id); }

    metrics counters;

private:
    std::shared_ptr<realtime_upstream> client_;
};

std::string error_code_of(const http_response& r) {
    const auto doc = nlohmann::json::parse(r.body, nullptr, false);
    return doc.is_object() && doc.contains("error") ? doc["error"].value("code", "") : "";
}

bool hung_up(const fake_openai_server& fake, const std::string& id) {
    const auto state = fake.state();
    for (const auto& h : state["hangups"]) {
        if (h == id) return true;
    }
    return false;
}

}  // namespace

TEST(openai_quota, insufficient_quota_on_a_key_is_upstream_quota_and_is_not_retried) {
    fake_openai_server fake;
    // Even when the server says "retry", an empty account is not asked again.
    fake.fault({{"route", "client_secrets"}, {"mode", "insufficient_quota"}, {"shouldRetry", true}});
    upstream u(fake);
    const auto r = u.mint();
    EXPECT_EQ(r.response.status, 503u);
    EXPECT_EQ(error_code_of(r.response), "upstream_quota");
    EXPECT_NE(r.response.body.find("out of credit"), std::string::npos);
    EXPECT_TRUE(r.quota_exhausted);
    EXPECT_EQ(fake.count("client_secrets"), 1);
}

TEST(openai_quota, credit_balance_exhausted_on_a_relayed_call_is_the_same) {
    fake_openai_server fake;
    fake.fault({{"route", "calls"}, {"mode", "insufficient_quota"}, {"variant", "credit_balance_exhausted"}});
    upstream u(fake);
    const auto r = u.relay();
    EXPECT_EQ(r.response.status, 503u);
    EXPECT_EQ(error_code_of(r.response), "upstream_quota");
    EXPECT_TRUE(r.quota_exhausted);
    EXPECT_EQ(r.call_id, std::nullopt);
    EXPECT_EQ(r.orphan_call_id, std::nullopt);
    EXPECT_EQ(fake.count("calls"), 1);
}

TEST(openai_retry, x_should_retry_false_stops_a_retry_the_status_would_allow) {
    fake_openai_server fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "503"}, {"shouldRetry", false}});
    upstream u(fake);
    EXPECT_EQ(error_code_of(u.mint().response), "upstream_error");
    EXPECT_EQ(fake.count("client_secrets"), 1);
}

TEST(openai_retry, x_should_retry_true_retries_a_status_that_would_not_be) {
    fake_openai_server fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "401"}, {"shouldRetry", true}, {"retryAfterMs", 10}});
    upstream u(fake);
    EXPECT_EQ(error_code_of(u.mint().response), "upstream_auth");
    EXPECT_EQ(fake.count("client_secrets"), 3) << "the first attempt and two retries, as the SDKs";
}

TEST(openai_retry, retry_after_ms_wins_over_retry_after) {
    fake_openai_server fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "429"}, {"count", 1}, {"retryAfterMs", 400}, {"retryAfter", 30}});
    upstream u(fake);
    const auto t0 = steady::now();
    const auto r = u.mint();
    const auto took = steady::now() - t0;
    EXPECT_EQ(r.response.status, 200u) << r.response.body;
    EXPECT_EQ(fake.count("client_secrets"), 2);
    EXPECT_GE(took, std::chrono::milliseconds{400}) << "waited retry-after-ms";
    EXPECT_LT(took, std::chrono::milliseconds{1500}) << "not Retry-After's 30 s";
}

TEST(openai_retry, a_server_wait_past_the_total_timeout_is_not_waited_for) {
    fake_openai_server fake;
    fake.fault({{"route", "client_secrets"}, {"mode", "503"}, {"retryAfterMs", 10000}});
    upstream u(fake, std::chrono::seconds{2});
    const auto t0 = steady::now();
    EXPECT_EQ(error_code_of(u.mint().response), "upstream_error");
    EXPECT_LT(steady::now() - t0, std::chrono::seconds{2});
    EXPECT_EQ(fake.count("client_secrets"), 1);
}

TEST(openai_calls, post_calls_is_never_repeated_once_sent) {
    fake_openai_server fake;
    upstream u(fake);
    struct fault_case {
        nlohmann::json fault;
        const char* page_code;
    };
    for (const auto& c : {fault_case{{{"route", "calls"}, {"mode", "503"}, {"shouldRetry", true}, {"retryAfterMs", 1}}, "upstream_error"},
                          fault_case{{{"route", "calls"}, {"mode", "429"}, {"retryAfterMs", 1}}, "upstream_rate_limited"},
                          fault_case{{{"route", "calls"}, {"mode", "500"}}, "upstream_error"},
                          fault_case{{{"route", "calls"}, {"mode", "drop"}}, "upstream_unreachable"}}) {
        fake.control("reset");
        fake.fault(c.fault);
        const auto r = u.relay();
        EXPECT_EQ(error_code_of(r.response), c.page_code) << c.fault.dump();
        EXPECT_EQ(fake.count("calls"), 1) << c.fault.dump();
    }
}

TEST(openai_calls, a_call_opened_behind_a_refused_answer_is_returned_to_be_hung_up) {
    fake_openai_server fake;
    upstream u(fake);
    int hangups = 0;
    for (const char* variant : {"not-sdp", "empty", "json", "error-with-location"}) {
        fake.fault({{"route", "calls"}, {"mode", "bad-answer"}, {"variant", variant}, {"count", 1}});
        const auto before = fake.count("calls");
        const auto r = u.relay();
        EXPECT_EQ(r.response.status, 502u) << variant;
        EXPECT_EQ(r.call_id, std::nullopt) << variant;
        ASSERT_TRUE(r.orphan_call_id) << variant;
        EXPECT_EQ(fake.count("calls"), before + 1) << variant << ": not retried";
        const auto call = fake.call(*r.orphan_call_id);
        EXPECT_EQ(call["faultAnswer"], variant) << "the id names the call the fake opened";
        u.hang_up(*r.orphan_call_id);
        ++hangups;
        ASSERT_TRUE(fake.wait("hangups=" + std::to_string(hangups))) << variant;
        EXPECT_TRUE(hung_up(fake, *r.orphan_call_id)) << variant;
    }
}

TEST(openai_calls, a_location_with_a_query_gives_the_bare_call_id) {
    fake_openai_server fake;
    fake.fault({{"route", "calls"}, {"mode", "location-query"}, {"count", 1}});
    upstream u(fake);
    const auto r = u.relay();
    ASSERT_EQ(r.response.status, 201u) << r.response.body;
    ASSERT_TRUE(r.call_id);
    EXPECT_EQ(r.call_id->find('?'), std::string::npos);
    EXPECT_EQ(fake.call(*r.call_id)["faultAnswer"], "location-query");
    u.hang_up(*r.call_id);
    ASSERT_TRUE(fake.wait("hangups=1"));
    EXPECT_TRUE(hung_up(fake, *r.call_id));
}

TEST(openai_calls, ids_that_are_not_call_ids_never_reach_a_url) {
    fake_openai_server fake;
    upstream u(fake);
    for (const char* bad : {"", "rtc_a/../../v1/realtime/client_secrets", "rtc_x?y=1", "rtc_x#y", "rtc_%2e%2e",
                            "../rtc_x", "rtc_a b"}) {
        u.hang_up(bad);
    }
    EXPECT_EQ(u.counters.hangups_failed.load(), 7u);
    u.hang_up("rtc_unknown_but_valid");  // the fake answers 404: proof the pipe works
    ASSERT_TRUE(fake.wait("requests=1"));
    const auto requests = fake.state()["requests"];
    ASSERT_EQ(requests.size(), 1u) << requests.dump();
    EXPECT_EQ(requests[0]["path"], "/v1/realtime/calls/rtc_unknown_but_valid/hangup");
}

TEST(openai_session, the_output_token_limit_is_part_of_the_session_both_modes_ask_for) {
    fake_openai_server fake;
    upstream u(fake, std::chrono::seconds{5}, 256);
    ASSERT_EQ(u.mint().response.status, 200u);
    ASSERT_EQ(u.relay().response.status, 201u);
    const auto requests = fake.state()["requests"];
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0]["body"]["session"]["max_output_tokens"], 256);
    const auto& part = requests[1]["body"]["session"];
    const auto session = part.is_string() ? nlohmann::json::parse(part.get<std::string>(), nullptr, false) : part;
    EXPECT_EQ(session["max_output_tokens"], 256) << requests[1]["body"].dump();
    const auto calls = fake.state()["calls"];
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0]["session"]["max_output_tokens"], 256) << "the fake accepted it";
}
