#include "voice_broker/token_usage.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace voice_broker {

namespace {

// A non-negative integer field, 0 when absent or null; nullopt when it is something else.
std::optional<std::uint64_t> count(const nlohmann::json& object, const char* key) {
    if (!object.is_object()) return 0;
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return 0;
    if (it->is_number_unsigned()) return it->get<std::uint64_t>();
    if (it->is_number_integer()) {
        const auto v = it->get<std::int64_t>();
        if (v < 0) return std::nullopt;
        return static_cast<std::uint64_t>(v);
    }
    return std::nullopt;
}

const nlohmann::json& member(const nlohmann::json& object, const char* key) {
    static const nlohmann::json null_value;
    if (!object.is_object()) return null_value;
    const auto it = object.find(key);
    return it == object.end() ? null_value : *it;
}

}  // namespace

token_usage& token_usage::operator+=(const token_usage& other) {
    text_input += other.text_input;
    cached_text_input += other.cached_text_input;
    audio_input += other.audio_input;
    cached_audio_input += other.cached_audio_input;
    image_input += other.image_input;
    cached_image_input += other.cached_image_input;
    text_output += other.text_output;
    audio_output += other.audio_output;
    return *this;
}

std::optional<token_usage> token_usage::from_response_usage(const nlohmann::json& usage) {
    if (!usage.is_object()) return std::nullopt;
    const auto& in = member(usage, "input_token_details");
    const auto& cached = member(in, "cached_tokens_details");
    const auto& out = member(usage, "output_token_details");
    const auto input_tokens = count(usage, "input_tokens");
    const auto output_tokens = count(usage, "output_tokens");
    const auto text_in = count(in, "text_tokens");
    const auto audio_in = count(in, "audio_tokens");
    const auto image_in = count(in, "image_tokens");
    const auto cached_all = count(in, "cached_tokens");
    const auto cached_text = count(cached, "text_tokens");
    const auto cached_audio = count(cached, "audio_tokens");
    const auto cached_image = count(cached, "image_tokens");
    const auto text_out = count(out, "text_tokens");
    const auto audio_out = count(out, "audio_tokens");
    for (const auto& v : {input_tokens, output_tokens, text_in, audio_in, image_in, cached_all, cached_text, cached_audio,
                          cached_image, text_out, audio_out}) {
        if (!v) return std::nullopt;
    }

    token_usage u;
    // Cached parts, each at most its kind's total.
    std::uint64_t c_text = std::min(*cached_text, *text_in);
    std::uint64_t c_audio = std::min(*cached_audio, *audio_in);
    std::uint64_t c_image = std::min(*cached_image, *image_in);
    if (!cached.is_object() && *cached_all > 0) {  // an older shape: cached tokens without the split
        c_text = std::min(*cached_all, *text_in);
        c_audio = std::min(*cached_all - c_text, *audio_in);
    }
    u.cached_text_input = c_text;
    u.cached_audio_input = c_audio;
    u.cached_image_input = c_image;
    u.text_input = *text_in - c_text;
    u.audio_input = *audio_in - c_audio;
    u.image_input = *image_in - c_image;
    if (*input_tokens > u.input_total()) u.audio_input += *input_tokens - u.input_total();

    u.text_output = *text_out;
    u.audio_output = *audio_out;
    if (*output_tokens > u.output_total()) u.audio_output += *output_tokens - u.output_total();
    return u;
}

std::optional<token_usage> token_usage::from_transcription_usage(const nlohmann::json& usage) {
    if (!usage.is_object() || member(usage, "type") != "tokens") return std::nullopt;
    const auto& in = member(usage, "input_token_details");
    const auto input_tokens = count(usage, "input_tokens");
    const auto output_tokens = count(usage, "output_tokens");
    const auto text_in = count(in, "text_tokens");
    const auto audio_in = count(in, "audio_tokens");
    if (!input_tokens || !output_tokens || !text_in || !audio_in) return std::nullopt;
    token_usage u;
    u.text_input = *text_in;
    u.audio_input = *audio_in;
    if (*input_tokens > u.input_total()) u.audio_input += *input_tokens - u.input_total();
    u.text_output = *output_tokens;
    return u;
}

}  // namespace voice_broker
