// Fuzzes the status document against a reference: status_renderer::answer() and push() must be,
// byte for byte, the document docs/API.md describes built the slow, obvious way as a nlohmann
// object and dumped (invalid UTF-8 in a ticket replaced, as the renderer does), plus
// "type":"status" for a push; for any status and any limits.  Both must parse as JSON equal to
// that document.
#include "fuzz_support.hpp"

#include "voice_broker/status_renderer.hpp"

#include <fuzzer/FuzzedDataProvider.h>
#include <nlohmann/json.hpp>

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

// The broker's instants stay within years of the server's start: an unbounded one would overflow
// the chrono arithmetic in wall_clock_mapping, which no real status can reach.
steady_time instant(FuzzedDataProvider& in, steady_time anchor) {
    constexpr std::int64_t ten_years_ms = 10LL * 366 * 24 * 3600 * 1000;
    return anchor + std::chrono::milliseconds{in.ConsumeIntegralInRange<std::int64_t>(-ten_years_ms, ten_years_ms)};
}

// The documented status (docs/API.md), built as a JSON object.
nlohmann::json reference_status(const entry_status& s, const session_limits& limits, const wall_clock_mapping& clock) {
    auto warnings = nlohmann::json::array();
    for (auto w : limits.warnings) {
        if (w < limits.session_duration) warnings.push_back(w.count());
    }
    nlohmann::json out = {{"ticket", s.ticket},
                          {"state", to_string(s.state)},
                          {"queueLength", s.queue_length},
                          {"remainingSeconds", s.remaining_seconds},
                          {"limits",
                           {{"maxConcurrentUsers", limits.max_concurrent_users},
                            {"sessionSeconds", limits.session_duration.count()},
                            {"warningSeconds", warnings}}}};
    switch (s.state) {
    case entry_state::queued:
        out["position"] = s.position;
        out["etaSeconds"] = s.eta_seconds;
        break;
    case entry_state::active:
        out["startedAt"] = format_iso8601(clock.to_wall(s.started_at));
        out["expiresAt"] = format_iso8601(clock.to_wall(s.expires_at));
        out["confirmed"] = s.confirmed;
        out["etaSeconds"] = 0;
        if (s.last_warning.count() > 0) out["lastWarningSeconds"] = s.last_warning.count();  // once a warning fired
        break;
    case entry_state::ended:
        out["reason"] = to_string(s.reason);
        break;
    }
    return out;
}

std::string dump(const nlohmann::json& doc) { return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

void same(const std::string& fast, const std::string& slow) {
    FUZZ_CHECK(fast == slow, "renderer: " + fast + "\nreference: " + slow);
    const auto parsed = nlohmann::json::parse(fast, nullptr, false);
    FUZZ_CHECK(!parsed.is_discarded() && parsed == nlohmann::json::parse(slow), fast);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const steady_time anchor = steady_time{} + std::chrono::hours{in.ConsumeIntegralInRange<int>(0, 1'000'000)};
    const auto wall = std::chrono::system_clock::time_point{} +
                      std::chrono::seconds{in.ConsumeIntegralInRange<std::int64_t>(0, 4'102'444'800)};  // 1970..2100
    const wall_clock_mapping clock(anchor, wall);

    session_limits limits;
    limits.max_concurrent_users = in.ConsumeIntegral<std::size_t>();
    limits.max_queue_length = in.ConsumeIntegral<std::size_t>();
    limits.session_duration = std::chrono::seconds{in.ConsumeIntegral<std::int64_t>()};
    limits.warnings.clear();
    for (int n = in.ConsumeIntegralInRange<int>(0, 5); n > 0; --n) {
        limits.warnings.emplace_back(in.ConsumeIntegral<std::int64_t>());
    }

    entry_status s;
    s.state = in.PickValueInArray({entry_state::active, entry_state::queued, entry_state::ended});
    s.reason = in.PickValueInArray(
        {end_reason::expired, end_reason::left, end_reason::forced, end_reason::abandoned, end_reason::shutdown});
    s.entry_id = in.ConsumeIntegral<std::uint64_t>();
    s.position = in.ConsumeIntegral<std::size_t>();
    s.queue_length = in.ConsumeIntegral<std::size_t>();
    s.eta_seconds = in.ConsumeIntegral<std::int64_t>();
    s.remaining_seconds = in.ConsumeIntegral<std::int64_t>();
    s.confirmed = in.ConsumeBool();
    s.started_at = instant(in, anchor);
    s.expires_at = instant(in, anchor);
    s.last_warning = std::chrono::seconds{in.ConsumeIntegralInRange<std::int64_t>(0, 1'000'000)};
    s.ticket = in.ConsumeRemainingBytesAsString();

    const status_renderer renderer(limits, clock);
    auto doc = reference_status(s, limits, clock);
    same(renderer.answer(s), dump(doc));
    doc["type"] = "status";
    same(renderer.push(s), dump(doc));
    return 0;
}
