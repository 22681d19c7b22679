// A hash index over entries kept elsewhere (a vector, a pool): open
// addressing with linear probing, slots holding 1 + the entry's index (0 =
// empty), at most half full. The keys stay in the entries; every call takes
// `key_of(index)` to read one. Deletion shifts the rest of a run back, so
// there are no tombstones and a lookup stops at the first empty slot.
// Nothing is allocated except when the table grows. Pure: no I/O.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace lbd::health {

template <class Key, class Hash>
class IndexTable {
public:
    /// The index whose key equals `key`, else nullopt.
    template <class KeyOf>
    std::optional<uint32_t> find(const Key& key, KeyOf&& key_of) const
    {
        if (auto slot = find_slot(key, key_of))
            return slots_[*slot] - 1;
        return std::nullopt;
    }

    /// Adds `index`; its key must not be in the table yet.
    template <class KeyOf>
    void insert(uint32_t index, KeyOf&& key_of)
    {
        if ((size_ + 1) * 2 > slots_.size())
            grow(key_of);
        place(index + 1, Hash{}(key_of(index)));
        ++size_;
    }

    /// Removes the index stored under `key`; false if there is none.
    template <class KeyOf>
    bool erase(const Key& key, KeyOf&& key_of)
    {
        auto found = find_slot(key, key_of);
        if (!found)
            return false;
        const size_t mask = slots_.size() - 1;
        size_t hole = *found;
        for (size_t i = (hole + 1) & mask; slots_[i]; i = (i + 1) & mask) {
            const size_t home = Hash{}(key_of(slots_[i] - 1)) & mask;
            // Moves back unless its home lies in (hole, i], cyclically.
            if (((i - home) & mask) >= ((i - hole) & mask)) {
                slots_[hole] = slots_[i];
                hole = i;
            }
        }
        slots_[hole] = 0;
        --size_;
        return true;
    }

    size_t size() const { return size_; }
    size_t capacity() const { return slots_.size(); }
    void clear()
    {
        slots_.clear();
        size_ = 0;
    }

private:
    std::vector<uint32_t> slots_;
    size_t size_ = 0;

    template <class KeyOf>
    std::optional<size_t> find_slot(const Key& key, KeyOf& key_of) const
    {
        if (slots_.empty())
            return std::nullopt;
        const size_t mask = slots_.size() - 1;
        for (size_t i = Hash{}(key) & mask;; i = (i + 1) & mask) {
            const uint32_t v = slots_[i];
            if (!v)
                return std::nullopt;
            if (key_of(v - 1) == key)
                return i;
        }
    }

    void place(uint32_t value, size_t hash)
    {
        const size_t mask = slots_.size() - 1;
        size_t i = hash & mask;
        while (slots_[i])
            i = (i + 1) & mask;
        slots_[i] = value;
    }

    template <class KeyOf>
    void grow(KeyOf& key_of)
    {
        std::vector<uint32_t> old = std::exchange(slots_, std::vector<uint32_t>(std::max<size_t>(64, slots_.size() * 2)));
        for (uint32_t v : old)
            if (v)
                place(v, Hash{}(key_of(v - 1)));
    }
};

}  // namespace lbd::health
