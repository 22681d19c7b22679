// Internal to the probes: address conversion, socket setup (mark, source),
// error texts, and the probe functions run_probe dispatches to.
#pragma once

#include <utility>  // before Asio: 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>

#include <sys/socket.h>

#include <string>

#include "health/probe.h"

namespace lbd::health::detail {

inline boost::asio::ip::address to_asio(const IpAddr& a)
{
    if (a.is_v4())
        return boost::asio::ip::address_v4({a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]});
    boost::asio::ip::address_v6::bytes_type b;
    std::copy(a.bytes.begin(), a.bytes.end(), b.begin());
    return boost::asio::ip::address_v6(b);
}

inline IpAddr from_asio(const boost::asio::ip::address& a)
{
    IpAddr out;
    if (a.is_v4()) {
        auto b = a.to_v4().to_bytes();
        std::copy(b.begin(), b.end(), out.bytes.begin());
    } else {
        out.family = Family::V6;
        auto b = a.to_v6().to_bytes();
        std::copy(b.begin(), b.end(), out.bytes.begin());
    }
    return out;
}

/// "refused", "unreachable", "timeout after 2s", "aborted", else the system's text.
std::string io_reason(const boost::system::error_code& ec, const ProbeControl& ctl, const Target& t);

/// "timeout after 2s".
std::string timeout_reason(const Target& t);

/// SO_MARK and bind(source) on an open socket; empty on success, else a reason.
std::string setup_socket(int fd, const Target& t);

/// Opens `s` for `proto`, then setup_socket. Empty on success, else a reason.
template <class Socket, class Protocol>
std::string open_socket(Socket& s, const Protocol& proto, const Target& t)
{
    boost::system::error_code ec;
    s.open(proto, ec);
    if (ec)
        return "socket: " + ec.message();
    return setup_socket(s.native_handle(), t);
}

boost::asio::awaitable<ProbeResult> probe_tcp(const Target& t, ProbeControl& ctl);
boost::asio::awaitable<ProbeResult> probe_http(const Target& t, ProbeControl& ctl, ProbeEnv& env, bool tls);
boost::asio::awaitable<ProbeResult> probe_udp(const Target& t, ProbeControl& ctl);
boost::asio::awaitable<ProbeResult> probe_dns(const Target& t, ProbeControl& ctl, ProbeEnv& env);
boost::asio::awaitable<ProbeResult> probe_icmp(const Target& t, ProbeControl& ctl, ProbeEnv& env);
boost::asio::awaitable<ProbeResult> probe_exec(const Target& t, ProbeControl& ctl);

}  // namespace lbd::health::detail
