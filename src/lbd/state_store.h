// lbd's persisted state: one JSON file in control.state_dir, replaced
// atomically (write a temporary file, fsync, rename, fsync the directory), so
// a crash at any moment leaves the old or the new file, never a torn one.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace lbd {

class StateStore {
public:
    explicit StateStore(std::string dir);
    /// The saved state, nullopt if none. Throws on an unreadable or corrupt file.
    std::optional<nlohmann::json> load() const;
    /// Replaces the saved state atomically. Throws on failure.
    void save(const nlohmann::json& state) const;
    const std::string& path() const { return path_; }

private:
    std::string dir_, path_;
};

}  // namespace lbd
