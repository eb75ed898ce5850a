// waiting_queue: the ids of session_broker's queued entries, head first.  Owned by the broker.
//
// Entry ids grow with join order, so the FIFO is a sorted vector: a visitor's place is a binary
// search (O(log N), where walking a std::set made filling a queue of N cost O(N^2)), and a join is
// a push_back.  Admitting the head, the common removal, only moves a start offset; the dead
// prefix is dropped once it is as long as the live part, so that costs O(1) amortized.  Leaving
// from the middle moves the ids behind it, a memmove of 8 bytes per visitor.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace voice_broker {

class waiting_queue {
public:
    bool empty() const { return head_ == ids_.size(); }
    std::size_t size() const { return ids_.size() - head_; }
    std::uint64_t front() const { return ids_[head_]; }
    const std::uint64_t* begin() const { return ids_.data() + head_; }
    const std::uint64_t* end() const { return ids_.data() + ids_.size(); }

    // `id` must be larger than every id queued so far (it joined last).
    void push_back(std::uint64_t id) {
        assert(ids_.empty() || id > ids_.back());
        ids_.push_back(id);
    }

    // 1-based place of `id`, or 0 when it does not wait.
    std::size_t position(std::uint64_t id) const {
        const auto it = std::lower_bound(begin(), end(), id);
        return it != end() && *it == id ? static_cast<std::size_t>(it - begin()) + 1 : 0;
    }

    // False when `id` does not wait.
    bool erase(std::uint64_t id) {
        const auto place = position(id);
        if (place == 0) return false;
        if (place > 1) {
            ids_.erase(ids_.begin() + static_cast<std::ptrdiff_t>(head_ + place - 1));
            return true;
        }
        ++head_;
        if (empty()) {
            ids_.clear();
            head_ = 0;
        } else if (head_ >= size()) {
            ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
        return true;
    }

private:
    std::vector<std::uint64_t> ids_;  // sorted; ids_[0, head_) already left
    std::size_t head_ = 0;
};

}  // namespace voice_broker
