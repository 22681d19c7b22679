// tcp: healthy when the connection is established. The socket is closed with
// SO_LINGER 0 (RST): frequent probes leave no TIME_WAIT sockets behind.
// (half_open: true is SynProber's, run_probe calls it.)
#include "health/probe_util.h"  // first: it includes <utility> before Asio

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>


namespace lbd::health::detail {

namespace asio = boost::asio;
using asio::ip::tcp;

asio::awaitable<ProbeResult> probe_tcp(const Target& t, ProbeControl& ctl)
{
    tcp::endpoint ep(to_asio(t.probe_address()), t.probe_port());
    tcp::socket sock(co_await asio::this_coro::executor);
    if (auto why = open_socket(sock, ep.protocol(), t); !why.empty())
        co_return ProbeResult{false, why};
    auto guard = ctl.on_stop([&sock] {
        boost::system::error_code ignored;
        sock.close(ignored);
    });
    boost::system::error_code ec;
    co_await sock.async_connect(ep, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return ProbeResult{false, io_reason(ec, ctl, t)};
    sock.set_option(tcp::socket::linger(true, 0), ec);
    co_return ProbeResult{true, "connected"};
}

}  // namespace lbd::health::detail
