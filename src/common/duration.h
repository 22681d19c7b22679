// Durations as the config writes them: "250ms", "5s", "2m", "1h". Pure.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace lbd {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::milliseconds d);

}  // namespace lbd
