#include "voice_broker/usd_amount.hpp"

#include <algorithm>
#include <cstdlib>

namespace voice_broker {

std::string format_usd(usd_amount amount, int decimals) {
    decimals = std::clamp(decimals, 0, 12);
    std::int64_t scale = 1;
    for (int i = decimals; i < 12; ++i) scale *= 10;
    const bool negative = amount.picodollars < 0;
    // Magnitude in units of 10^-decimals dollars, rounded half away from zero.
    const std::uint64_t magnitude = negative ? 0 - static_cast<std::uint64_t>(amount.picodollars)
                                             : static_cast<std::uint64_t>(amount.picodollars);
    const std::uint64_t units = (magnitude + static_cast<std::uint64_t>(scale) / 2) / static_cast<std::uint64_t>(scale);
    std::uint64_t unit_per_dollar = 1;
    for (int i = 0; i < decimals; ++i) unit_per_dollar *= 10;
    std::string out = negative && units != 0 ? "-$" : "$";
    out += std::to_string(units / unit_per_dollar);
    if (decimals > 0) {
        std::string fraction = std::to_string(units % unit_per_dollar);
        out += '.';
        out.append(static_cast<std::size_t>(decimals) - fraction.size(), '0');
        out += fraction;
    }
    return out;
}

}  // namespace voice_broker
