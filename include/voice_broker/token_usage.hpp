// token_usage: the tokens one Realtime response (or one input transcription) was billed for,
// split the way OpenAI prices them.  A plain value: parsed from the `usage` object of a
// `response.done` server event, summed per call, per session and per day.
//
// The parts are disjoint: `text_input` is the uncached text input, `cached_text_input` the
// cached part (OpenAI reports cached tokens inside the input tokens, and prices them lower).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>

namespace voice_broker {

struct token_usage {
    std::uint64_t text_input = 0;          // uncached
    std::uint64_t cached_text_input = 0;
    std::uint64_t audio_input = 0;         // uncached
    std::uint64_t cached_audio_input = 0;
    std::uint64_t image_input = 0;         // uncached
    std::uint64_t cached_image_input = 0;
    std::uint64_t text_output = 0;
    std::uint64_t audio_output = 0;

    std::uint64_t input_total() const {
        return text_input + cached_text_input + audio_input + cached_audio_input + image_input + cached_image_input;
    }
    std::uint64_t output_total() const { return text_output + audio_output; }
    bool empty() const { return input_total() == 0 && output_total() == 0; }

    token_usage& operator+=(const token_usage& other);
    friend token_usage operator+(token_usage a, const token_usage& b) { return a += b; }
    friend bool operator==(const token_usage&, const token_usage&) = default;

    // `response.done`'s `response.usage` (RealtimeResponse.usage in OpenAI's spec):
    //   {input_tokens, output_tokens, input_token_details: {text_tokens, audio_tokens, image_tokens,
    //    cached_tokens, cached_tokens_details: {text_tokens, audio_tokens, image_tokens}},
    //    output_token_details: {text_tokens, audio_tokens}}
    // nullopt when it is null or not that shape.  Tokens the details do not explain (input_tokens
    // larger than the parts) are counted as audio, the dearest kind, so that a changed shape can
    // only overstate the cost; cached tokens without details count as text.
    static std::optional<token_usage> from_response_usage(const nlohmann::json& usage);

    // An input transcription's usage (`conversation.item.input_audio_transcription.completed`):
    //   {type:"tokens", input_tokens, input_token_details:{text_tokens, audio_tokens}, output_tokens}
    // Output is text.  nullopt for {type:"duration"} (whisper-1 bills by the second) or another shape.
    static std::optional<token_usage> from_transcription_usage(const nlohmann::json& usage);
};

}  // namespace voice_broker
