#include "voice_broker/price_table.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

namespace voice_broker {

namespace {

constexpr std::int64_t usd(double dollars) { return static_cast<std::int64_t>(dollars * 1'000'000 + 0.5); }

// "-2025-08-28" at the end of a model name.
bool has_date_suffix(std::string_view model) {
    if (model.size() < 12) return false;
    const auto tail = model.substr(model.size() - 11);
    for (std::size_t i = 0; i < tail.size(); ++i) {
        const char c = tail[i];
        const bool dash = i == 0 || i == 5 || i == 8;
        if (dash ? c != '-' : (c < '0' || c > '9')) return false;
    }
    return true;
}

struct price_key {
    const char* name;
    std::int64_t model_prices::*field;
    bool required;
};

constexpr price_key price_keys[] = {
    {"text_input", &model_prices::text_input, true},
    {"cached_text_input", &model_prices::cached_text_input, true},
    {"text_output", &model_prices::text_output, true},
    {"audio_input", &model_prices::audio_input, true},
    {"cached_audio_input", &model_prices::cached_audio_input, true},
    {"audio_output", &model_prices::audio_output, true},
    {"image_input", &model_prices::image_input, false},
    {"cached_image_input", &model_prices::cached_image_input, false},
};

}  // namespace

usd_amount model_prices::cost(const token_usage& u) const {
    auto part = [](std::uint64_t tokens, std::int64_t price) { return static_cast<std::int64_t>(tokens) * price; };
    return {part(u.text_input, text_input) + part(u.cached_text_input, cached_text_input) +
            part(u.audio_input, audio_input) + part(u.cached_audio_input, cached_audio_input) +
            part(u.image_input, image_input) + part(u.cached_image_input, cached_image_input) +
            part(u.text_output, text_output) + part(u.audio_output, audio_output)};
}

price_table price_table::defaults() {
    // Dollars per 1M tokens, from OpenAI's model pages (source and date in
    // config/session-limits.json and docs/COST.md).
    price_table t;
    t.set("gpt-realtime", {.text_input = usd(4.00), .cached_text_input = usd(0.40), .text_output = usd(16.00),
                           .audio_input = usd(32.00), .cached_audio_input = usd(0.40), .audio_output = usd(64.00),
                           .image_input = usd(5.00), .cached_image_input = usd(0.50)});
    t.set("gpt-realtime-mini", {.text_input = usd(0.60), .cached_text_input = usd(0.06), .text_output = usd(2.40),
                                .audio_input = usd(10.00), .cached_audio_input = usd(0.30), .audio_output = usd(20.00),
                                .image_input = usd(0.80), .cached_image_input = usd(0.08)});
    // The input transcription the page shows (OPENAI_TRANSCRIPTION_MODEL) is billed on its own.
    t.set("gpt-4o-mini-transcribe", {.text_input = usd(1.25), .cached_text_input = usd(1.25), .text_output = usd(5.00),
                                     .audio_input = usd(1.25), .cached_audio_input = usd(1.25), .audio_output = usd(5.00),
                                     .image_input = usd(1.25), .cached_image_input = usd(1.25)});
    t.set("gpt-4o-transcribe", {.text_input = usd(2.50), .cached_text_input = usd(2.50), .text_output = usd(10.00),
                                .audio_input = usd(2.50), .cached_audio_input = usd(2.50), .audio_output = usd(10.00),
                                .image_input = usd(2.50), .cached_image_input = usd(2.50)});
    return t;
}

std::optional<std::string> price_table::merge(const nlohmann::json& section) {
    if (!section.is_object()) return "PRICES must be an object of models";
    price_table merged = *this;
    for (const auto& [model, entry] : section.items()) {
        if (!model.empty() && model.front() == '$') continue;
        if (model.empty() || model.size() > 100) return "PRICES has an empty or overlong model name";
        if (!entry.is_object()) return "PRICES." + model + " must be an object of prices (USD per 1M tokens)";
        model_prices p;
        bool image_given = false;
        for (const auto& [key, value] : entry.items()) {
            if (!key.empty() && key.front() == '$') continue;
            const price_key* found = nullptr;
            for (const auto& k : price_keys) {
                if (key == k.name) found = &k;
            }
            if (!found) return "PRICES." + model + " has an unknown key " + key;
            if (!value.is_number()) return "PRICES." + model + "." + key + " must be a number of dollars per 1M tokens";
            const double dollars = value.get<double>();
            const double micro = dollars * 1'000'000;
            if (!std::isfinite(dollars) || dollars < 0 || dollars > 10'000 || std::fabs(micro - std::round(micro)) > 1e-6) {
                return "PRICES." + model + "." + key + " must be from 0 to 10000 with at most 6 decimals";
            }
            p.*(found->field) = std::llround(micro);
            if (!found->required) image_given = true;
        }
        for (const auto& k : price_keys) {
            if (k.required && !entry.contains(k.name)) return "PRICES." + model + " needs " + k.name;
        }
        if (!image_given) {
            p.image_input = p.audio_input;
            p.cached_image_input = p.audio_input;
        } else {
            if (!entry.contains("image_input")) p.image_input = p.audio_input;
            if (!entry.contains("cached_image_input")) p.cached_image_input = p.image_input;
        }
        merged.set(model, p);
    }
    *this = std::move(merged);
    return std::nullopt;
}

void price_table::set(std::string model, model_prices prices) {
    for (auto& [name, p] : entries_) {
        if (name == model) {
            p = prices;
            return;
        }
    }
    entries_.emplace_back(std::move(model), prices);
}

const model_prices* price_table::find(std::string_view model) const {
    for (const auto& [name, p] : entries_) {
        if (name == model) return &p;
    }
    if (has_date_suffix(model)) return find(model.substr(0, model.size() - 11));
    return nullptr;
}

}  // namespace voice_broker
