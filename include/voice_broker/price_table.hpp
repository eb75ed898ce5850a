// price_table: what OpenAI charges per model, per million tokens of each kind, and the exact
// dollars of a token_usage.  Read from the PRICES section of config/session-limits.json over
// built-in defaults (the same figures, so that a missing file still prices calls); replaced
// whole on reload.  A plain value.
#pragma once

#include "voice_broker/token_usage.hpp"
#include "voice_broker/usd_amount.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace voice_broker {

// Micro-dollars per million tokens: $0.40 per 1M is 400000.  One token then costs exactly that
// many picodollars.
struct model_prices {
    std::int64_t text_input = 0;
    std::int64_t cached_text_input = 0;
    std::int64_t text_output = 0;
    std::int64_t audio_input = 0;
    std::int64_t cached_audio_input = 0;
    std::int64_t audio_output = 0;
    std::int64_t image_input = 0;
    std::int64_t cached_image_input = 0;

    usd_amount cost(const token_usage& usage) const;
    friend bool operator==(const model_prices&, const model_prices&) = default;
};

class price_table {
public:
    // The built-in prices (see config/session-limits.json for their source and date).
    static price_table defaults();

    // Applies a PRICES section over this table: {"gpt-realtime": {"text_input": 4.00, ...}, ...},
    // dollars per 1M tokens with at most 6 decimals.  Each model needs text_input,
    // cached_text_input, text_output, audio_input, cached_audio_input and audio_output;
    // image_input and cached_image_input are optional (absent: priced as audio input, so that
    // a missing figure overstates rather than hides a cost).  Keys starting with '$' are
    // comments.  Returns the error, naming the model and key, or nothing.
    std::optional<std::string> merge(const nlohmann::json& section);

    // The prices of `model`, or of its base name for a dated snapshot
    // ("gpt-realtime-2025-08-28" -> "gpt-realtime"); nullptr when unknown.
    const model_prices* find(std::string_view model) const;

    void set(std::string model, model_prices prices);
    std::size_t size() const { return entries_.size(); }
    friend bool operator==(const price_table&, const price_table&) = default;

private:
    std::vector<std::pair<std::string, model_prices>> entries_;
};

}  // namespace voice_broker
