// redis_store_budget: the spend budget in redis mode (shared_budget.hpp, docs/COST.md).  The day's
// and the month's spend are hashes in Redis ("{prefix}:spend:day:<date>", "...:month:<yyyy-mm>",
// micro-dollars), added to by whichever instance prices a session, and read by the script itself
// before every admission: spent + committed (the remaining minutes of every lease, from the lease
// deadlines and Redis's TIME) + one full session must fit each budget that is on.  So the gate is
// one for all instances, and atomic with the admission.  The periods are named by the instance
// (BUDGET_TIMEZONE's local day and month, from its wall clock) and passed with every run.
#include "redis_store_impl.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

namespace voice_broker::redis_store_detail {

namespace {

// The token fields of a spend hash, in the order add_spend's arguments carry them (SPEND_TOKENS
// in redis_store_operations.lua).
const std::pair<const char*, std::uint64_t token_usage::*> spend_tokens[] = {
    {"ti", &token_usage::text_input},  {"cti", &token_usage::cached_text_input},  {"ai", &token_usage::audio_input},
    {"cai", &token_usage::cached_audio_input}, {"ii", &token_usage::image_input}, {"cii", &token_usage::cached_image_input},
    {"to", &token_usage::text_output}, {"ao", &token_usage::audio_output},
};

// A whole number Redis wrote into a hash (never negative: only HINCRBY of positive amounts).
std::uint64_t hash_number(const std::string& text, const char* period) {
    std::uint64_t n = 0;
    const auto* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, n);
    if (ec != std::errc{} || p != end || n > (1ULL << 53)) throw malformed_reply(std::string("a spend field of ") + period + " is not a count");
    return n;
}

// HGETALL's flat field/value list, read into a period's spend.
period_spend read_period(const script_doc& sp, const char* list, const char* period_key) {
    period_spend out;
    out.key = sp.text_or(period_key, "");
    const auto fields = sp.texts(list);
    if (fields.size() % 2 != 0) throw malformed_reply(std::string("the spend of ") + list + " is not field/value pairs");
    for (std::size_t i = 0; i < fields.size(); i += 2) {
        const auto& name = fields[i];
        const auto& value = fields[i + 1];
        if (name == "real") out.real = from_micro_usd(static_cast<std::int64_t>(hash_number(value, list)));
        else if (name == "est") out.estimated = from_micro_usd(static_cast<std::int64_t>(hash_number(value, list)));
        else if (name == "w80") out.warned_80 = true;
        else if (name == "w100") out.warned_100 = true;
        else {
            for (const auto& [field, member] : spend_tokens) {
                if (name == field) out.tokens.*member = hash_number(value, list);
            }
        }
    }
    return out;
}

}  // namespace

void redis_store_impl::link_budget(std::function<std::optional<budget_terms>()> terms,
                                   std::function<void(const shared_spend&)> on_spend) {
    budget_terms_ = std::move(terms);
    on_spend_ = std::move(on_spend);
}

std::vector<std::string> redis_store_impl::budget_argv() const {
    const auto terms = budget_terms_ ? budget_terms_() : std::nullopt;
    if (!terms) return {"", "", "0", "0", "0"};
    return {terms->day_period, terms->month_period, std::to_string(terms->daily_micro_usd),
            std::to_string(terms->monthly_micro_usd), std::to_string(terms->cost_per_minute_micro_usd)};
}

void redis_store_impl::note_spend(const std::string& op, const script_answer& a) {
    if (!on_spend_ || !a.doc.contains("sp")) return;
    shared_spend spend;
    try {
        const auto r = a.reader();
        const auto sp = r.object("sp");
        spend.day = read_period(sp, "d", "dp");
        spend.month = read_period(sp, "m", "mp");
        for (const auto& c : r.objects("crossed")) {
            const int percent = c.small_or("p", 0);
            if (percent == 80 || percent == 100) spend.crossed.push_back({c.small_or("m", 0) == 1, percent});
        }
    } catch (const malformed_reply& e) {
        malformed(op, e);
        return;
    }
    on_spend_(spend);
}

void redis_store_impl::add_spend(const spend_delta& delta) {
    if (delta.empty()) return;
    auto& pending = pending_spend_[delta.entry_id];
    pending.entry_id = delta.entry_id;
    pending += delta;
    flush_spend();
}

void redis_store_impl::flush_spend() {
    if (spend_in_flight_ || pending_spend_.empty() || closing_ || !conn_ || !conn_->is_up()) return;
    in_flight_spend_ = std::move(pending_spend_.begin()->second);
    pending_spend_.erase(pending_spend_.begin());
    spend_in_flight_ = true;
    std::vector<std::string> args{std::to_string(micro_usd_ceil(in_flight_spend_.real)),
                                  std::to_string(micro_usd_ceil(in_flight_spend_.estimated))};
    for (const auto& [field, member] : spend_tokens) args.push_back(std::to_string(in_flight_spend_.tokens.*member));
    args.push_back(in_flight_spend_.entry_id ? std::to_string(in_flight_spend_.entry_id) : std::string());
    run("add_spend", std::move(args), [this](store_error error, const script_answer&) {
        spend_in_flight_ = false;
        auto sent = std::exchange(in_flight_spend_, spend_delta{});
        if (error != store_error::none) {
            // Perhaps added, perhaps not: added again later, since counting twice is safe and
            // losing it is not.
            spdlog::warn("budget: Redis did not confirm an addition to the shared spend; it is added again later");
            auto& pending = pending_spend_[sent.entry_id];
            pending.entry_id = sent.entry_id;
            pending += sent;
            return;
        }
        flush_spend();
    });
}

}  // namespace voice_broker::redis_store_detail
