// icmp: one echo request (IPv4 or ICMPv6); healthy on the matching echo
// reply. Uses a ping socket (SOCK_DGRAM, the kernel matches replies to it)
// where net.ipv4.ping_group_range allows it, else a raw socket (root or
// CAP_NET_RAW) with a filter that lets only echo replies through.
// GCC 12 warns wrongly about Asio's coroutine frame operator delete here
// (it pairs the frame's sized delete with the wrong new).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "health/probe_util.h"  // first: it includes <utility> before Asio

#include <boost/asio/generic/datagram_protocol.hpp>
#include <boost/asio/generic/raw_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <span>


namespace lbd::health::detail {

namespace asio = boost::asio;

namespace {

constexpr uint8_t kEchoRequest4 = 8, kEchoReply4 = 0;
constexpr uint8_t kEchoRequest6 = 128, kEchoReply6 = 129;
constexpr size_t kIcmpHeader = 8;
constexpr size_t kCookie = 16;
constexpr int kIcmpFilter = 1;  // ICMP_FILTER from <linux/icmp.h>, level SOL_RAW

uint16_t checksum(const uint8_t* p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += static_cast<uint32_t>(p[n - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

struct Echo {
    std::array<uint8_t, kIcmpHeader + kCookie> packet{};
    uint16_t id = 0;
    uint16_t seq = 0;
};

Echo make_echo(bool v4, ProbeEnv& env)
{
    Echo e;
    uint64_t r1 = env.random(), r2 = env.random();
    e.id = static_cast<uint16_t>(r1 >> 48);
    e.seq = static_cast<uint16_t>(r1 >> 32);
    auto& p = e.packet;
    p[0] = v4 ? kEchoRequest4 : kEchoRequest6;
    p[4] = static_cast<uint8_t>(e.id >> 8);
    p[5] = static_cast<uint8_t>(e.id);
    p[6] = static_cast<uint8_t>(e.seq >> 8);
    p[7] = static_cast<uint8_t>(e.seq);
    std::memcpy(&p[8], &r1, 8);
    std::memcpy(&p[16], &r2, 8);
    // ICMPv6 checksums cover a pseudo header: the kernel fills them in.
    if (v4) {
        uint16_t c = checksum(p.data(), p.size());
        p[2] = static_cast<uint8_t>(c >> 8);
        p[3] = static_cast<uint8_t>(c);
    }
    return e;
}

bool from_target(const sockaddr* sa, const IpAddr& a)
{
    if (a.is_v4())
        return sa->sa_family == AF_INET &&
               std::memcmp(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, a.bytes.data(), 4) == 0;
    return sa->sa_family == AF_INET6 &&
           std::memcmp(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, a.bytes.data(), 16) == 0;
}

/// Whether `data` (as received on the socket) is the reply to `e`.
bool is_reply(std::span<const uint8_t> data, const Echo& e, bool v4, bool raw)
{
    if (raw && v4) {  // raw IPv4 sockets deliver the IP header too
        if (data.empty())
            return false;
        size_t ihl = static_cast<size_t>(data[0] & 0x0f) * 4;
        if (ihl < 20 || ihl > data.size())
            return false;
        data = data.subspan(ihl);
    }
    if (data.size() < e.packet.size())
        return false;
    if (data[0] != (v4 ? kEchoReply4 : kEchoReply6) || data[1] != 0)
        return false;
    if (raw && (data[4] != e.packet[4] || data[5] != e.packet[5]))
        return false;  // a ping socket's id is the kernel's, which matched it already
    return std::memcmp(&data[6], &e.packet[6], 2 + kCookie) == 0;
}

template <class Protocol>
asio::awaitable<ProbeResult> ping(const Target& t, ProbeControl& ctl, ProbeEnv& env, Protocol proto, bool raw)
{
    bool v4 = t.probe_address().is_v4();
    typename Protocol::socket sock(co_await asio::this_coro::executor);
    if (auto why = open_socket(sock, proto, t); !why.empty())
        co_return ProbeResult{false, why};
    int fd = sock.native_handle();
    if (raw && v4) {
        uint32_t block = ~(1u << kEchoReply4);
        ::setsockopt(fd, SOL_RAW, kIcmpFilter, &block, sizeof block);
    } else if (raw) {
        icmp6_filter f;
        ICMP6_FILTER_SETBLOCKALL(&f);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
        ::setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
    }
    auto guard = ctl.on_stop([&sock] {
        boost::system::error_code ignored;
        sock.close(ignored);
    });

    sockaddr_storage ss{};
    socklen_t len;
    if (v4) {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        sa->sin_family = AF_INET;
        std::memcpy(&sa->sin_addr, t.probe_address().bytes.data(), 4);
        len = sizeof *sa;
    } else {
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        sa->sin6_family = AF_INET6;
        std::memcpy(&sa->sin6_addr, t.probe_address().bytes.data(), 16);
        len = sizeof *sa;
    }
    typename Protocol::endpoint dest(&ss, len, proto.protocol());
    Echo e = make_echo(v4, env);
    boost::system::error_code ec;
    co_await sock.async_send_to(asio::buffer(e.packet), dest, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return ProbeResult{false, io_reason(ec, ctl, t)};
    std::array<uint8_t, 1500> buf;
    typename Protocol::endpoint sender;
    for (;;) {
        size_t n = co_await sock.async_receive_from(asio::buffer(buf), sender,
                                                    asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return ProbeResult{false, io_reason(ec, ctl, t)};
        if (from_target(sender.data(), t.probe_address()) && is_reply({buf.data(), n}, e, v4, raw))
            co_return ProbeResult{true, "echo reply"};
    }
}

}  // namespace

asio::awaitable<ProbeResult> probe_icmp(const Target& t, ProbeControl& ctl, ProbeEnv& env)
{
    int family = t.probe_address().is_v4() ? AF_INET : AF_INET6;
    int protocol = t.probe_address().is_v4() ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6};
    // Ping socket first, if ping_group_range lets us have one (checked once
    // per family and thread).
    thread_local int ping_ok[2] = {-1, -1};
    int& ok = ping_ok[t.probe_address().is_v4() ? 0 : 1];
    if (ok < 0) {
        int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, protocol);
        ok = fd >= 0;
        if (fd >= 0)
            ::close(fd);
    }
    if (ok)
        co_return co_await ping(t, ctl, env, asio::generic::datagram_protocol(family, protocol), false);
    co_return co_await ping(t, ctl, env, asio::generic::raw_protocol(family, protocol), true);
}

}  // namespace lbd::health::detail
