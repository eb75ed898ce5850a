// openai_replies: what an OpenAI answer means for the visitor who asked.  The transport
// (openai_client) hands over what came back; these functions turn it into the page's answer,
// decide whether another attempt is allowed, count the upstream's errors and log them (never
// the key).
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/realtime_upstream.hpp"

#include <curl/curl.h>

#include <chrono>
#include <optional>
#include <string>

namespace voice_broker {

class metrics;

// What came back from one upstream exchange, after retries.
struct upstream_reply {
    CURLcode transport = CURLE_OK;
    long status = 0;
    std::string body;
    std::string content_type;
    std::string location;
    std::string request_id;
    std::string retry_after;     // Retry-After: seconds or an HTTP date
    std::string retry_after_ms;  // retry-after-ms (OpenAI's, milliseconds)
    std::string should_retry;    // x-should-retry: "true" or "false" (OpenAI's)
};

// 429 with error.type or error.code insufficient_quota (or code credit_balance_exhausted): the
// account is out of credit.  Waiting does not help; only the operator can.
bool is_quota_exhausted(const upstream_reply& r);

// Whether another attempt may be made, and after how long, the way OpenAI's own SDKs decide
// (openai-node src/client.ts shouldRetry/retryRequest/calculateDefaultRetryTimeoutMillis,
// openai-python _base_client.py _should_retry/_calculate_retry_timeout):
//  - x-should-retry: "true" retries and "false" does not, whatever the status;
//  - otherwise 408, 409, 429 and 5xx are retried;
//  - the wait is retry-after-ms (milliseconds), else Retry-After (seconds, or an HTTP date),
//    else min(0.5 s x 2^attempt, 8 s) x (1 - 0.25 x random);
//  - transport failures are retried when nothing can have reached the server (no connection);
//    a dropped or reset exchange only when `may_repeat` (see below).
// Stricter than the SDKs where cost is at stake: an insufficient_quota answer is never retried,
// and when `may_repeat` is false (POST /v1/realtime/calls) nothing that may have reached the
// server is repeated, whatever x-should-retry says, since a second attempt could open a second
// billed call.  `jitter` is a number in [0, 1) (the caller's random draw); `attempt` counts the
// retries already made (0 for the first failure).
struct retry_decision {
    bool retry = false;
    std::chrono::milliseconds wait{0};
};
retry_decision decide_retry(const upstream_reply& r, bool may_repeat, int attempt, double jitter,
                            std::chrono::system_clock::time_point now);

// POST /v1/realtime/client_secrets -> the page's key (200) or an error.
realtime_upstream::mint_result mint_answer(const upstream_reply& r, const openai_settings& settings, metrics& counters);

// POST /v1/realtime/calls -> the SDP answer (201) and the call id, or an error; a call id that
// came back on an answer that must be refused is returned as orphan_call_id.
realtime_upstream::call_result relay_answer(const upstream_reply& r, const openai_settings& settings, metrics& counters);

}  // namespace voice_broker
