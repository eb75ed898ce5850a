// budget_record: what the spend budget must remember across a restart: the spend of the current
// local day and month, and which warnings were already logged in them.  A plain value, so that
// memory mode keeps it in a small JSON file under DATA_DIR and redis mode can keep the same JSON
// in the store.
#pragma once

#include "voice_broker/token_usage.hpp"
#include "voice_broker/usd_amount.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace voice_broker {

struct period_spend {
    std::string key;           // the local day "2026-12-01" or month "2026-12"; empty: nothing yet
    usd_amount real;           // from the usage OpenAI reported
    usd_amount estimated;      // per-minute estimate for what no sideband could report
    token_usage tokens;        // the tokens behind `real`
    bool warned_80 = false;    // the 80 % line was logged in this period
    bool warned_100 = false;

    usd_amount total() const { return real + estimated; }
    friend bool operator==(const period_spend&, const period_spend&) = default;
};

struct budget_record {
    std::string time_zone = "UTC";  // the BUDGET_TIMEZONE the keys were made in
    period_spend day;
    period_spend month;
    friend bool operator==(const budget_record&, const budget_record&) = default;
};

// {"version":1,"timeZone":...,"day":{"period":...,"realPicoUsd":...,...},"month":{...}}; amounts
// in picodollars (exact), with dollars beside them for people.
std::string to_json_text(const budget_record& record);
// The error says what is wrong.
std::variant<budget_record, std::string> budget_record_from_json(std::string_view text);

// The file under DATA_DIR: `budget.json`.
inline constexpr const char* budget_file_name = "budget.json";

struct budget_load {
    budget_record record;        // zero when the file is missing or bad
    std::optional<std::string> warning;  // why it starts at zero (missing, unreadable, corrupt)
};

// Reads the record; never throws.
budget_load load_budget_record(const std::filesystem::path& file);
// Writes it atomically (temp file in the same folder, fsync, rename, fsync of the folder), making
// the folder if needed.  The error, or nothing.
std::optional<std::string> save_budget_record(const std::filesystem::path& file, const budget_record& record);

}  // namespace voice_broker
