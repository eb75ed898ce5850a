// usd_amount: an exact amount of US dollars, counted in picodollars (10^-12 $).
//
// Why integers: OpenAI prices tokens in dollars per million with at most a few decimals
// ($0.06, $2.40, $64), so one token costs a whole number of picodollars and every sum of
// usage is exact.  Doubles would drift, and a budget check of "spent + committed <= budget"
// must not flip on the 17th digit.  int64 holds about $9.2 million, far above any budget the
// settings accept ($1 million).
#pragma once

#include <cmath>
#include <compare>
#include <cstdint>
#include <string>

namespace voice_broker {

struct usd_amount {
    std::int64_t picodollars = 0;

    static constexpr std::int64_t per_dollar = 1'000'000'000'000;

    // Rounds to the nearest picodollar (amounts from settings and estimates).
    static usd_amount from_dollars(double dollars) { return {std::llround(dollars * static_cast<double>(per_dollar))}; }
    double dollars() const { return static_cast<double>(picodollars) / static_cast<double>(per_dollar); }
    bool is_zero() const { return picodollars == 0; }

    usd_amount& operator+=(usd_amount other) {
        picodollars += other.picodollars;
        return *this;
    }
    usd_amount& operator-=(usd_amount other) {
        picodollars -= other.picodollars;
        return *this;
    }
    friend usd_amount operator+(usd_amount a, usd_amount b) { return a += b; }
    friend usd_amount operator-(usd_amount a, usd_amount b) { return a -= b; }
    friend auto operator<=>(const usd_amount&, const usd_amount&) = default;
};

// "$1.234567": dollars with `decimals` digits (rounded half away from zero), for logs and pages.
std::string format_usd(usd_amount amount, int decimals = 6);

}  // namespace voice_broker
