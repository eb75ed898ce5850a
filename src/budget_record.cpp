#include "voice_broker/budget_record.hpp"

#include "voice_broker/file_io.hpp"

#include <nlohmann/json.hpp>

namespace voice_broker {

namespace {

const std::pair<const char*, std::uint64_t token_usage::*> token_fields[] = {
    {"textInput", &token_usage::text_input},          {"cachedTextInput", &token_usage::cached_text_input},
    {"audioInput", &token_usage::audio_input},        {"cachedAudioInput", &token_usage::cached_audio_input},
    {"imageInput", &token_usage::image_input},        {"cachedImageInput", &token_usage::cached_image_input},
    {"textOutput", &token_usage::text_output},        {"audioOutput", &token_usage::audio_output},
};

nlohmann::json period_json(const period_spend& p) {
    nlohmann::json tokens = nlohmann::json::object();
    for (const auto& [name, field] : token_fields) tokens[name] = p.tokens.*field;
    return {{"period", p.key},
            {"realPicoUsd", p.real.picodollars},
            {"estimatedPicoUsd", p.estimated.picodollars},
            {"spentUsd", format_usd(p.total(), 6).substr(1)},
            {"tokens", tokens},
            {"warned80", p.warned_80},
            {"warned100", p.warned_100}};
}

std::optional<period_spend> period_from(const nlohmann::json& doc, const char* name, std::string& error) {
    const auto it = doc.find(name);
    if (it == doc.end() || !it->is_object()) {
        error = std::string("\"") + name + "\" is missing";
        return std::nullopt;
    }
    const auto& p = *it;
    period_spend out;
    auto amount = [&](const char* key, usd_amount& target) {
        const auto v = p.find(key);
        if (v == p.end() || !v->is_number_integer() || v->get<std::int64_t>() < 0) {
            error = std::string(name) + "." + key + " is not a non-negative whole number";
            return false;
        }
        target.picodollars = v->get<std::int64_t>();
        return true;
    };
    if (!p.contains("period") || !p["period"].is_string()) {
        error = std::string(name) + ".period is missing";
        return std::nullopt;
    }
    out.key = p["period"].get<std::string>();
    if (!amount("realPicoUsd", out.real) || !amount("estimatedPicoUsd", out.estimated)) return std::nullopt;
    if (const auto t = p.find("tokens"); t != p.end()) {
        if (!t->is_object()) {
            error = std::string(name) + ".tokens is not an object";
            return std::nullopt;
        }
        for (const auto& [key, field] : token_fields) {
            const auto v = t->find(key);
            if (v == t->end()) continue;
            if (!v->is_number_unsigned()) {
                error = std::string(name) + ".tokens." + key + " is not a whole number";
                return std::nullopt;
            }
            out.tokens.*field = v->get<std::uint64_t>();
        }
    }
    out.warned_80 = p.value("warned80", false);
    out.warned_100 = p.value("warned100", false);
    return out;
}

}  // namespace

std::string to_json_text(const budget_record& record) {
    return nlohmann::json{{"version", 1},
                          {"timeZone", record.time_zone},
                          {"day", period_json(record.day)},
                          {"month", period_json(record.month)}}
               .dump(2) +
           "\n";
}

std::variant<budget_record, std::string> budget_record_from_json(std::string_view text) {
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return std::string("it is not a JSON object");
    if (doc.value("version", 0) != 1) return std::string("its version is not 1");
    budget_record out;
    if (!doc.contains("timeZone") || !doc["timeZone"].is_string()) return std::string("timeZone is missing");
    out.time_zone = doc["timeZone"].get<std::string>();
    std::string error;
    auto day = period_from(doc, "day", error);
    if (!day) return error;
    auto month = period_from(doc, "month", error);
    if (!month) return error;
    out.day = std::move(*day);
    out.month = std::move(*month);
    return out;
}

budget_load load_budget_record(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
        return {{}, "no budget record at " + file.string() + " yet: spending starts at zero"};
    }
    const auto text = read_file(file);
    if (!text) return {{}, "cannot read the budget record " + file.string() + ": spending starts at zero"};
    auto parsed = budget_record_from_json(*text);
    if (auto* why = std::get_if<std::string>(&parsed)) {
        return {{}, "the budget record " + file.string() + " is corrupt (" + *why + "): spending starts at zero"};
    }
    return {std::get<budget_record>(std::move(parsed)), std::nullopt};
}

std::optional<std::string> save_budget_record(const std::filesystem::path& file, const budget_record& record) {
    return write_file_atomically(file, to_json_text(record));
}

}  // namespace voice_broker
