// Fuzzes the live channel's status push against the reference: status_renderer::render must be,
// byte for byte, status_json(s) plus "type":"status" as nlohmann dumps it, for any status and any
// limits; its output must parse as JSON equal to that document.  When one side refuses a ticket
// (invalid UTF-8: nlohmann throws type_error 316), the other must refuse it too.
#include "fuzz_support.hpp"

#include "voice_broker/session_api.hpp"
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

std::string outcome(const std::function<std::string()>& f, bool& threw) {
    try {
        threw = false;
        return f();
    } catch (const nlohmann::json::exception& e) {
        threw = true;
        return e.what();
    }
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
    s.tokens_minted = in.ConsumeIntegral<int>();
    s.started_at = instant(in, anchor);
    s.expires_at = instant(in, anchor);
    s.ticket = in.ConsumeRemainingBytesAsString();

    bool fast_threw = false, slow_threw = false;
    const auto fast = outcome([&] { return status_renderer(limits, clock).render(s); }, fast_threw);
    const auto slow = outcome(
        [&] {
            auto doc = status_json(s, limits, clock);
            doc["type"] = "status";
            return doc.dump();
        },
        slow_threw);
    FUZZ_CHECK(fast_threw == slow_threw, "renderer: " + fast + "\nstatus_json: " + slow);
    if (fast_threw) return 0;
    FUZZ_CHECK(fast == slow, "renderer: " + fast + "\nstatus_json: " + slow);
    const auto parsed = nlohmann::json::parse(fast, nullptr, false);
    FUZZ_CHECK(!parsed.is_discarded() && parsed == nlohmann::json::parse(slow), fast);
    FUZZ_CHECK(parsed["ticket"].get<std::string>() == s.ticket, fast);
    return 0;
}
