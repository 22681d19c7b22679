// Internal: the TLS client contexts ProbeEnv keeps for the https probe.
#pragma once

#include <utility>  // before Asio: 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/ssl/context.hpp>

#include <optional>

#include "health/probe.h"

namespace lbd::health {

struct ProbeEnv::Tls {
    /// No certificate verification (the default: backends are probed by IP).
    boost::asio::ssl::context& insecure();
    /// Chain verified against the system's CAs; the probe adds the host/IP check.
    boost::asio::ssl::context& verifying();

private:
    std::optional<boost::asio::ssl::context> insecure_;
    std::optional<boost::asio::ssl::context> verifying_;
};

}  // namespace lbd::health
