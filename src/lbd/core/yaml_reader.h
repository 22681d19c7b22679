// Reading YAML into lbd's config model: the shared helpers every config
// section uses (unknown keys, types, ranges, addresses, durations), each
// error carrying its key path and line. Pure: yaml-cpp only.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/addr.h"
#include "common/duration.h"
#include "lbd/core/config.h"

namespace lbd {

struct Range {
    uint64_t lo, hi;
};


inline std::string range_message(Range r)
{
    return "must be between " + std::to_string(r.lo) + " and " + std::to_string(r.hi);
}

inline std::string at(const std::string& path, size_t i)
{
    return path + "[" + std::to_string(i) + "]";
}

using Fields = std::map<std::string, YAML::Node, std::less<>>;

inline int line_of(const YAML::Node& n)
{
    return n.Mark().line + 1;  // 0-based; the null mark (-1) becomes 0 = unknown
}

inline const YAML::Node* find(const Fields& f, std::string_view name)
{
    auto it = f.find(name);
    return it == f.end() ? nullptr : &it->second;
}

/// Collects errors while a section of the config is read. Sections (datapath,
/// vips, health, bgp, ...) are read by code that calls these helpers.
class YamlReader {
public:
    std::vector<ConfigError> errors;
    std::set<std::string, std::less<>> failed;  // keys whose value could not go into the model

    /// The line of `key`, else of its nearest recorded parent; 0 if none.
    int line_for(std::string_view key) const
    {
        for (size_t end = key.size();; --end) {
            if (end == key.size() || end == 0 || key[end] == '.' || key[end] == '[')
                if (auto it = lines_.find(key.substr(0, end)); it != lines_.end())
                    return it->second;
            if (end == 0)
                return 0;
        }
    }

    /// Records the line of `key` (for list items, which fields() does not see).
    void note_line(const std::string& key, int line) { lines_.emplace(key, line); }


public:
    /// An error about the value at `key` (not about the key itself).
    void error(const std::string& key, std::string message)
    {
        errors.push_back({key, line_for(key), std::move(message)});
        failed.insert(key);
    }

    /// The entries of map `n` at `path`; unknown and repeated keys are errors.
    /// `reserved` keys are let through for the caller to refuse.
    std::optional<Fields> fields(const YAML::Node& n, const std::string& path,
                                 std::initializer_list<std::string_view> known,
                                 std::span<const std::string_view> reserved = {})
    {
        if (!n.IsMap()) {
            error(path, "must be a mapping");
            return std::nullopt;
        }
        Fields out;
        for (const auto& kv : n) {
            if (!kv.first.IsScalar()) {
                errors.push_back({path, line_of(kv.first), "keys must be plain names"});
                continue;
            }
            const std::string& name = kv.first.Scalar();
            auto key = path.empty() ? name : path + "." + name;
            if (std::find(known.begin(), known.end(), name) == known.end() &&
                std::find(reserved.begin(), reserved.end(), name) == reserved.end())
                errors.push_back({key, line_of(kv.first), "unknown key '" + name + "'"});
            else if (!out.emplace(name, kv.second).second)
                errors.push_back({key, line_of(kv.first), "duplicate key '" + name + "'"});
            else
                lines_.emplace(key, line_of(kv.first));
        }
        return out;
    }

    const YAML::Node* require(const Fields& f, const std::string& path, std::string_view name)
    {
        const YAML::Node* n = find(f, name);
        if (!n)
            error(path.empty() ? std::string(name) : path + "." + std::string(name), "is required");
        return n;
    }

    std::optional<std::string> text(const YAML::Node& n, const std::string& key, const std::string& what)
    {
        if (n.IsScalar())
            return n.Scalar();
        error(key, "must be " + what);
        return std::nullopt;
    }

    /// Decimal or 0x hex, within `r`.
    template <class T>
    void integer(const YAML::Node& n, const std::string& key, Range r, T& out)
    {
        if (!n.IsScalar()) {
            error(key, "must be an integer");
            return;
        }
        std::string_view s = n.Scalar();
        bool negative = s.starts_with('-');
        if (negative)
            s.remove_prefix(1);
        int base = 10;
        if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
            s.remove_prefix(2);
            base = 16;
        }
        uint64_t v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
        if (s.empty() || end != s.data() + s.size() || ec == std::errc::invalid_argument)
            error(key, "must be an integer");
        else if (negative || ec == std::errc::result_out_of_range || v < r.lo || v > r.hi)
            error(key, range_message(r));
        else
            out = static_cast<T>(v);
    }

    std::optional<IpAddr> address(const YAML::Node& n, const std::string& key)
    {
        auto s = text(n, key, "an IP address");
        if (!s)
            return std::nullopt;
        auto a = IpAddr::parse(*s);
        if (!a)
            error(key, "'" + *s + "' is not an IP address");
        return a;
    }

    /// "250ms", "5s", "2m", "1h".
    std::optional<std::chrono::milliseconds> duration(const YAML::Node& n, const std::string& key)
    {
        auto s = text(n, key, "a duration such as 500ms, 5s or 1m");
        if (!s)
            return std::nullopt;
        auto d = parse_duration(*s);
        if (!d)
            error(key, "'" + *s + "' is not a duration (a number with ms, s, m or h)");
        return d;
    }

    /// true/false (also yes/no, on/off as YAML allows).
    std::optional<bool> boolean(const YAML::Node& n, const std::string& key)
    {
        bool v = false;
        if (n.IsScalar() && YAML::convert<bool>::decode(n, v))
            return v;
        error(key, "must be true or false");
        return std::nullopt;
    }

protected:
    std::map<std::string, int, std::less<>> lines_;  // key path -> 1-based line
};

}  // namespace lbd
