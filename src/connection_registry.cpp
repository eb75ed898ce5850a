#include "connection_registry.hpp"

#include <utility>
#include <vector>

namespace voice_broker {

std::uint64_t connection_registry::add(std::weak_ptr<connection> c) {
    std::lock_guard lock(mutex_);
    const auto id = next_id_++;
    live_.emplace(id, std::move(c));
    return id;
}

void connection_registry::remove(std::uint64_t id) {
    std::function<void()> drained;
    {
        std::lock_guard lock(mutex_);
        live_.erase(id);
        if (live_.empty()) drained = std::exchange(on_empty_, nullptr);
    }
    if (drained) drained();
}

void connection_registry::when_empty(std::function<void()> f) {
    {
        std::lock_guard lock(mutex_);
        if (!f || !live_.empty()) {
            on_empty_ = std::move(f);
            return;
        }
    }
    f();
}

void connection_registry::shutdown_all() {
    std::vector<std::shared_ptr<connection>> alive;
    {
        std::lock_guard lock(mutex_);
        for (auto& [id, weak] : live_) {
            if (auto c = weak.lock()) alive.push_back(std::move(c));
        }
    }
    for (auto& c : alive) c->begin_shutdown();
}

std::size_t connection_registry::size() const {
    std::lock_guard lock(mutex_);
    return live_.size();
}

}  // namespace voice_broker
