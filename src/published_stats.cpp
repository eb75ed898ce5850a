#include "published_stats.hpp"

#include <string>

namespace voice_broker {

void published_stats::publish(http_response& answer, const stats_inputs& inputs, steady_time fresh_until) {
    answer.shared_body = std::make_shared<const std::string>(std::move(answer.body));
    answer.body.clear();
    // Its headers rendered once too: serving the copy then allocates nothing.
    std::string lines;
    for (const auto& [name, value] : answer.headers) lines.append(name).append(": ").append(value).append("\r\n");
    answer.prepared_head = std::make_shared<const std::string>(std::move(lines));
    answer.headers.clear();
    snapshot_.store(std::make_shared<const snapshot>(snapshot{answer, fresh_until}), std::memory_order_release);
    published_for_ = inputs;
}

void published_stats::withdraw_if_changed(const stats_inputs& inputs) {
    if (!published_for_ || *published_for_ == inputs) return;
    snapshot_.store(nullptr, std::memory_order_release);
    published_for_.reset();
}

std::optional<http_response> published_stats::fresh(steady_time now) const {
    const auto s = snapshot_.load(std::memory_order_acquire);
    if (!s || now >= s->fresh_until) return std::nullopt;
    return s->answer;
}

}  // namespace voice_broker
