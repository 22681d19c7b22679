// An error in lbd's config: the key path, the line, what is wrong.
#pragma once

#include <string>

namespace lbd {

struct ConfigError {
    std::string key;      // e.g. "vips[0].backends[1].port"
    int line = 0;         // 1-based; 0 when not known
    std::string message;
    /// "FILE:LINE: KEY: MESSAGE" (FILE and LINE left out when unknown).
    std::string str(const std::string& file = {}) const;
};

}  // namespace lbd
