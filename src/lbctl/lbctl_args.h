// lbctl's command line: arguments in, one control-protocol request out
// (docs/control-protocol.md). Pure: no sockets, no printing, no exiting.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lbctl {

inline constexpr const char* kDefaultSocket = "/run/lbd/lbd.sock";
inline constexpr std::chrono::milliseconds kDefaultTimeout{10'000};

// Exit codes (docs/lbctl.md).
inline constexpr int kExitOk = 0;          // ok: true (or --help, --version)
inline constexpr int kExitRefused = 1;     // ok: false
inline constexpr int kExitUsage = 2;       // bad command line
inline constexpr int kExitNoAnswer = 3;    // cannot reach lbd, or no usable answer

struct Options {
    std::string socket = kDefaultSocket;
    bool json = false;
    std::chrono::milliseconds timeout = kDefaultTimeout;
};

struct Invocation {
    enum class Kind {
        Request,     // send `request` to lbd on options.socket
        Print,       // print `text` on stdout and exit with exit_code (--help, --version)
        UsageError,  // print `text` on stderr and exit with exit_code (2)
    };
    Kind kind = Kind::UsageError;
    Options options;
    nlohmann::ordered_json request;  // Kind::Request: {"cmd": ..., args}
    std::string text;        // Kind::Print / UsageError; ends in '\n'
    int exit_code = kExitUsage;
};

/// Parses lbctl's arguments (without argv[0]). `env_socket` is $LBD_SOCKET
/// (nullptr or empty when unset); `version` is what --version prints after
/// "lbctl ".
Invocation parse_args(const std::vector<std::string>& args, const char* env_socket, std::string_view version);

/// Splits `--backends` on commas, trimming blanks around each spec. The specs
/// themselves are not checked (lbd does that). "" and blanks give an empty
/// list; an empty item in a non-empty list ("a,,b", "a,") is an error.
std::optional<std::vector<std::string>> split_backends(std::string_view text);

/// `--timeout`: a duration as the config writes it ("500ms", "10s", "2m") or
/// a bare number of seconds ("10"). Must be positive.
std::optional<std::chrono::milliseconds> parse_timeout(std::string_view text);

/// `--weight`: a non-negative decimal integer (the upper bound is lbd's).
std::optional<uint64_t> parse_weight(std::string_view text);

}  // namespace lbctl
