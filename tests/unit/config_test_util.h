// Helpers the config tests share: load YAML text and get its errors or model.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "lbd/core/config.h"

namespace lbd::testing {

/// The errors of a config that should be refused (empty if it loaded).
inline std::vector<ConfigError> errors_of(const std::string& yaml)
{
    auto r = load_config_string(yaml);
    auto* e = std::get_if<std::vector<ConfigError>>(&r);
    return e ? *e : std::vector<ConfigError>{};
}

/// The model of a config that should load; each error fails the test.
inline Config config_of(const std::string& yaml)
{
    auto r = load_config_string(yaml);
    if (auto* e = std::get_if<std::vector<ConfigError>>(&r)) {
        for (const auto& err : *e)
            ADD_FAILURE() << err.str();
        return {};
    }
    return std::get<Config>(r);
}

/// Errors one per line, for failure messages.
inline std::string dump(const std::vector<ConfigError>& errors)
{
    std::string out;
    for (const auto& e : errors)
        out += "  " + e.str() + "\n";
    return out;
}

}  // namespace lbd::testing
