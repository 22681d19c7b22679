#include "common/duration.h"

#include <array>
#include <charconv>
#include <limits>
#include <utility>

namespace lbd {

namespace {

using Rep = std::chrono::milliseconds::rep;

// Largest first, so format_duration can pick the largest exact unit.
constexpr std::array<std::pair<std::string_view, Rep>, 4> kUnits{{
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text)
{
    auto digits_end = text.find_first_not_of("0123456789");
    if (digits_end == 0 || digits_end == text.npos)
        return std::nullopt;
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + digits_end, n);
    if (ec != std::errc{} || n == 0)
        return std::nullopt;
    auto unit = text.substr(digits_end);
    for (auto [name, factor] : kUnits) {
        if (unit != name)
            continue;
        if (n > static_cast<uint64_t>(std::numeric_limits<Rep>::max() / factor))
            return std::nullopt;
        return std::chrono::milliseconds(static_cast<Rep>(n) * factor);
    }
    return std::nullopt;
}

std::string format_duration(std::chrono::milliseconds d)
{
    Rep ms = d.count();
    if (ms != 0)
        for (auto [name, factor] : kUnits)
            if (ms % factor == 0)
                return std::to_string(ms / factor) + std::string(name);
    return std::to_string(ms) + "ms";
}

}  // namespace lbd
