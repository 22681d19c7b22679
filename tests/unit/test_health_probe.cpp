// The probes against small servers on loopback, on one io_context. No root.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "health/dns_wire.h"
#include "health/probe.h"

using namespace lbd;
using namespace lbd::health;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

Target target(CheckType type, uint16_t port, std::chrono::milliseconds timeout = 500ms)
{
    Target t;
    t.vip = "v";
    t.address = *IpAddr::parse("127.0.0.1");
    t.port = port;
    t.config.type = type;
    t.config.timeout = timeout;
    t.config.interval = timeout * 2;
    return t;
}

/// Runs one probe on `io` (with whatever servers were spawned on it) and
/// returns its result once it is done.
ProbeResult probe_once(asio::io_context& io, const Target& t)
{
    ProbeEnv env;
    auto ctl = ProbeControl::create(io.get_executor());
    std::optional<ProbeResult> result;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            result = co_await run_probe(t, *ctl, env);
            io.stop();
        },
        asio::detached);
    io.run_for(10s);
    io.restart();
    EXPECT_TRUE(result) << "probe did not finish";
    return result.value_or(ProbeResult{false, "did not finish"});
}

uint16_t unused_port()
{
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

/// An HTTP server answering each connection with `response` after reading
/// the request head; the last request head goes to `seen`.
struct HttpServer {
    tcp::acceptor acceptor;
    std::string response;
    std::string seen;
    bool answer = true;
    bool greet = false;  // send the response at once, before reading anything

    HttpServer(asio::io_context& io, std::string r)
        : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), response(std::move(r))
    {
        asio::co_spawn(io, serve(), asio::detached);
    }
    uint16_t port() const { return acceptor.local_endpoint().port(); }

    asio::awaitable<void> serve()
    {
        for (;;) {
            boost::system::error_code ec;
            auto sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec)
                co_return;
            std::string head;
            std::array<char, 1024> buf;
            if (greet) {
                co_await asio::async_write(sock, asio::buffer(response), asio::redirect_error(asio::use_awaitable, ec));
                continue;
            }
            while (head.find("\r\n\r\n") == head.npos) {
                size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
                if (ec)
                    break;
                head.append(buf.data(), n);
            }
            seen = head;
            if (!answer) {
                // Hold the connection open without answering until the peer goes away.
                co_await sock.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
                continue;
            }
            co_await asio::async_write(sock, asio::buffer(response), asio::redirect_error(asio::use_awaitable, ec));
        }
    }
};

/// Connects `n` non-blocking sockets to `ep` without waiting: with a listen
/// backlog of 0 and nobody accepting, later SYNs to it go unanswered.
struct BacklogFiller {
    std::vector<int> fds;
    BacklogFiller(const tcp::endpoint& ep, int n)
    {
        for (int i = 0; i < n; ++i) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            ::connect(fd, ep.data(), static_cast<socklen_t>(ep.size()));
            fds.push_back(fd);
        }
    }
    ~BacklogFiller()
    {
        for (int fd : fds)
            ::close(fd);
    }
};

bool no_children()
{
    return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

}  // namespace

TEST(HealthProbe, TcpConnectedAndRefused)
{
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto ok = probe_once(io, target(CheckType::Tcp, a.local_endpoint().port()));
    EXPECT_TRUE(ok.ok) << ok.reason;
    EXPECT_EQ(ok.reason, "connected");

    auto refused = probe_once(io, target(CheckType::Tcp, unused_port()));
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.reason, "refused");
}

TEST(HealthProbe, TcpTimeoutWhenBacklogIsFull)
{
    // A listener with a full backlog lets SYNs go unanswered.
    asio::io_context io;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    tcp::acceptor a(io, tcp::v4(), fd);
    a.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    a.listen(0);
    BacklogFiller fill(a.local_endpoint(), 4);
    auto t = target(CheckType::Tcp, a.local_endpoint().port(), 200ms);
    auto start = std::chrono::steady_clock::now();
    auto r = probe_once(io, t);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reason, "timeout after 200ms");
    EXPECT_LT(took, 1s);
}

TEST(HealthProbe, HttpStatusPathAndHost)
{
    asio::io_context io;
    HttpServer ok(io, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    auto t = target(CheckType::Http, ok.port());
    t.config.path = "/healthz";
    t.config.host = "www.example.org";
    auto r = probe_once(io, t);
    EXPECT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.reason, "status 200");
    EXPECT_TRUE(ok.seen.starts_with("GET /healthz HTTP/1.1\r\n")) << ok.seen;
    EXPECT_NE(ok.seen.find("\r\nHost: www.example.org\r\n"), std::string::npos) << ok.seen;

    HttpServer busy(io, "HTTP/1.1 503 Service Unavailable\r\n\r\n");
    auto down = probe_once(io, target(CheckType::Http, busy.port()));
    EXPECT_FALSE(down.ok);
    EXPECT_EQ(down.reason, "status 503");

    auto t2 = target(CheckType::Http, busy.port());
    t2.config.expect_status = {500, 503};
    auto expected = probe_once(io, t2);
    EXPECT_TRUE(expected.ok) << expected.reason;
}

TEST(HealthProbe, HttpBadResponseAndTimeout)
{
    asio::io_context io;
    HttpServer ssh(io, "SSH-2.0-OpenSSH_9.2\r\n");
    auto bad = probe_once(io, target(CheckType::Http, ssh.port()));
    EXPECT_FALSE(bad.ok);
    EXPECT_EQ(bad.reason, "bad response");

    HttpServer hang(io, "");
    hang.answer = false;
    auto start = std::chrono::steady_clock::now();
    auto slow = probe_once(io, target(CheckType::Http, hang.port(), 150ms));
    EXPECT_FALSE(slow.ok);
    EXPECT_EQ(slow.reason, "timeout after 150ms");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);

    HttpServer silent(io, "");  // closes without a word
    auto closed = probe_once(io, target(CheckType::Http, silent.port()));
    EXPECT_FALSE(closed.ok);
    EXPECT_TRUE(closed.reason.starts_with("bad response")) << closed.reason;
}

TEST(HealthProbe, HttpsAgainstPlainServerFailsHandshake)
{
    asio::io_context io;
    HttpServer plain(io, "HTTP/1.1 400 Bad Request\r\n\r\n");
    plain.greet = true;
    auto r = probe_once(io, target(CheckType::Https, plain.port()));
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.reason.starts_with("tls handshake: ")) << r.reason;
}

TEST(HealthProbe, UdpReplyExpectAndRefused)
{
    asio::io_context io;
    udp::socket server(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::string reply = "pong";
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            std::array<char, 512> buf;
            udp::endpoint from;
            for (;;) {
                boost::system::error_code ec;
                size_t n = co_await server.async_receive_from(asio::buffer(buf), from,
                                                              asio::redirect_error(asio::use_awaitable, ec));
                if (ec)
                    co_return;
                if (std::string_view(buf.data(), n) == "ping")
                    co_await server.async_send_to(asio::buffer(reply), from,
                                                  asio::redirect_error(asio::use_awaitable, ec));
            }
        },
        asio::detached);
    auto t = target(CheckType::Udp, server.local_endpoint().port(), 200ms);
    t.config.payload = "ping";
    auto any = probe_once(io, t);
    EXPECT_TRUE(any.ok) << any.reason;

    t.config.expect = "on";
    EXPECT_TRUE(probe_once(io, t).ok);
    t.config.expect = "ack";
    auto wrong = probe_once(io, t);
    EXPECT_FALSE(wrong.ok);
    EXPECT_EQ(wrong.reason, "unexpected reply");

    t.config.payload = "hello";  // no answer
    auto silent = probe_once(io, t);
    EXPECT_EQ(silent.reason, "timeout after 200ms");

    auto refused = probe_once(io, target(CheckType::Udp, unused_port()));
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.reason, "refused");
}

TEST(HealthProbe, DnsAgainstFakeServer)
{
    asio::io_context io;
    udp::socket server(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    int queries = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            std::array<uint8_t, 512> buf;
            udp::endpoint from;
            for (;;) {
                boost::system::error_code ec;
                size_t n = co_await server.async_receive_from(asio::buffer(buf), from,
                                                              asio::redirect_error(asio::use_awaitable, ec));
                if (ec)
                    co_return;
                ++queries;
                auto q = dns::parse_question(std::span<const uint8_t>(buf.data(), n));
                std::vector<uint8_t> r(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
                // First a stray datagram with the wrong id: must be ignored.
                auto stray = r;
                stray[0] ^= 0xff;
                stray[2] |= 0x80;
                co_await server.async_send_to(asio::buffer(stray), from, asio::redirect_error(asio::use_awaitable, ec));
                r[2] |= 0x80;
                r[3] = q && q->name == "example.org" ? 0x80 : 0x83;  // NOERROR or NXDOMAIN
                co_await server.async_send_to(asio::buffer(r), from, asio::redirect_error(asio::use_awaitable, ec));
            }
        },
        asio::detached);
    auto t = target(CheckType::Dns, server.local_endpoint().port(), 300ms);
    t.config.query_name = "example.org";
    auto ok = probe_once(io, t);
    EXPECT_TRUE(ok.ok) << ok.reason;
    EXPECT_TRUE(ok.reason.starts_with("NOERROR")) << ok.reason;

    t.config.query_name = "gone.test";
    auto nx = probe_once(io, t);
    EXPECT_FALSE(nx.ok);
    EXPECT_EQ(nx.reason, "rcode NXDOMAIN");
    EXPECT_EQ(queries, 2);
}

TEST(HealthProbe, ExecExitStatusAndEnvironment)
{
    asio::io_context io;
    auto t = target(CheckType::Exec, 1234, 2s);
    t.config.command = {"/bin/true"};
    auto ok = probe_once(io, t);
    EXPECT_TRUE(ok.ok) << ok.reason;
    EXPECT_EQ(ok.reason, "exit 0");

    t.config.command = {"false"};  // looked up in PATH
    auto fail = probe_once(io, t);
    EXPECT_FALSE(fail.ok);
    EXPECT_EQ(fail.reason, "exit 1");

    t.config.command = {"/bin/sh", "-c",
                        "test \"$LBD_BACKEND_ADDRESS\" = 127.0.0.1 && test \"$LBD_BACKEND_PORT\" = 1234 && "
                        "test \"$LBD_VIP_NAME\" = v"};
    auto env = probe_once(io, t);
    EXPECT_TRUE(env.ok) << env.reason;

    t.config.command = {"/nonexistent/check"};
    auto missing = probe_once(io, t);
    EXPECT_FALSE(missing.ok);
    EXPECT_NE(missing.reason.find("cannot run /nonexistent/check"), std::string::npos) << missing.reason;
    EXPECT_TRUE(no_children());
}

TEST(HealthProbe, ExecKilledAtTimeoutWithItsGroupAndReaped)
{
    asio::io_context io;
    auto t = target(CheckType::Exec, 1, 200ms);
    // A shell with a child: both must die (process group kill).
    t.config.command = {"/bin/sh", "-c", "sleep 30 & sleep 30; wait"};
    auto start = std::chrono::steady_clock::now();
    auto r = probe_once(io, t);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reason, "timeout after 200ms");
    EXPECT_TRUE(no_children());
}

TEST(HealthProbe, AbortEndsARunningProbe)
{
    asio::io_context io;
    auto t = target(CheckType::Exec, 1, 5s);
    t.config.command = {"/bin/sleep", "30"};
    ProbeEnv env;
    auto ctl = ProbeControl::create(io.get_executor());
    std::optional<ProbeResult> result;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { result = co_await run_probe(t, *ctl, env); }, asio::detached);
    asio::steady_timer later(io, 100ms);
    later.async_wait([&](auto) { ctl->abort(); });
    auto start = std::chrono::steady_clock::now();
    io.run_for(5s);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    ASSERT_TRUE(result);
    EXPECT_FALSE(result->ok);
    EXPECT_EQ(result->reason, "aborted");
    EXPECT_TRUE(no_children());
}

TEST(HealthProbe, IcmpLoopback)
{
    asio::io_context io;
    int raw = ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    int ping = ::socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    if (raw < 0 && ping < 0)
        GTEST_SKIP() << "neither a raw nor a ping socket is allowed here";
    if (raw >= 0)
        ::close(raw);
    if (ping >= 0)
        ::close(ping);
    auto t = target(CheckType::Icmp, 0, 500ms);
    auto r = probe_once(io, t);
    EXPECT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.reason, "echo reply");
}

TEST(HealthProbe, MarkAndSourceAreApplied)
{
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto t = target(CheckType::Tcp, a.local_endpoint().port());
    t.source = *IpAddr::parse("127.0.0.1");
    EXPECT_TRUE(probe_once(io, t).ok);
    t.source = *IpAddr::parse("::1");
    auto wrong_family = probe_once(io, t);
    EXPECT_FALSE(wrong_family.ok);
    EXPECT_NE(wrong_family.reason.find("not of the backend's family"), std::string::npos);
    t.source.reset();
    t.mark = 0x42;
    auto marked = probe_once(io, t);
    if (::geteuid() == 0)
        EXPECT_TRUE(marked.ok) << marked.reason;
    else
        EXPECT_TRUE(marked.ok || marked.reason.starts_with("SO_MARK")) << marked.reason;
}

TEST(HealthProbe, TunnelToIsWhereTheProbeGoesWithTtl1)
{
    // A UDP server on loopback that notes the TTL of what it receives.
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    int on = 1;
    ASSERT_EQ(::setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof on), 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);
    int ttl = -1;
    std::thread server([&] {
        char buf[64], ctrl[64];
        sockaddr_in from{};
        iovec iov{buf, sizeof buf};
        msghdr m{};
        m.msg_name = &from;
        m.msg_namelen = sizeof from;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctrl;
        m.msg_controllen = sizeof ctrl;
        const ssize_t n = ::recvmsg(fd, &m, 0);
        if (n < 0)
            return;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL)
                std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
        ::sendto(fd, "pong", 4, 0, reinterpret_cast<sockaddr*>(&from), m.msg_namelen);
    });

    asio::io_context io;
    auto t = target(CheckType::Udp, ntohs(sa.sin_port));
    t.address = *IpAddr::parse("192.0.2.1");    // the backend: not where the packets go
    t.tunnel_to = *IpAddr::parse("127.0.0.1");  // the VIP
    t.config.payload = "ping";
    EXPECT_EQ(t.probe_address(), *t.tunnel_to);
    EXPECT_EQ(t.endpoint(), "192.0.2.1:" + std::to_string(ntohs(sa.sin_port))) << "logs name the backend";
    auto r = probe_once(io, t);
    server.join();
    ::close(fd);
    EXPECT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(ttl, 1) << "only lbd's TC program gets a tunnelled probe anywhere";
}
