// openai_replies: what an OpenAI answer means for the visitor who asked.  The transport
// (openai_client) hands over what came back; these functions turn it into the page's answer,
// count the upstream's errors and log them (never the key).
#pragma once

#include "voice_broker/config.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/realtime_upstream.hpp"

#include <curl/curl.h>

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
    std::string retry_after;
};

// Whether another attempt may succeed (transport failures before an answer; 408, 409, 429, 5xx).
bool retryable(const upstream_reply& r);

// POST /v1/realtime/client_secrets -> the page's key (200) or an error.
http_response mint_answer(const upstream_reply& r, const openai_settings& settings, metrics& counters);

// POST /v1/realtime/calls -> the SDP answer (201) and the call id, or an error.
realtime_upstream::call_result relay_answer(const upstream_reply& r, const openai_settings& settings, metrics& counters);

}  // namespace voice_broker
