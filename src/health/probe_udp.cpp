// udp: send the payload on a connected socket; healthy when a reply arrives
// (containing `expect`, if set) within the timeout. An ICMP port unreachable
// ends the probe at once as "refused".
#include "health/probe_util.h"  // first: it includes <utility> before Asio

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <string_view>


namespace lbd::health::detail {

namespace asio = boost::asio;
using asio::ip::udp;

asio::awaitable<ProbeResult> probe_udp(const Target& t, ProbeControl& ctl)
{
    udp::endpoint ep(to_asio(t.probe_address()), t.probe_port());
    udp::socket sock(co_await asio::this_coro::executor);
    if (auto why = open_socket(sock, ep.protocol(), t); !why.empty())
        co_return ProbeResult{false, why};
    auto guard = ctl.on_stop([&sock] {
        boost::system::error_code ignored;
        sock.close(ignored);
    });
    boost::system::error_code ec;
    sock.connect(ep, ec);
    if (ec)
        co_return ProbeResult{false, io_reason(ec, ctl, t)};
    co_await sock.async_send(asio::buffer(t.config.payload), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return ProbeResult{false, io_reason(ec, ctl, t)};
    std::array<char, 2048> buf;
    size_t n = co_await sock.async_receive(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return ProbeResult{false, io_reason(ec, ctl, t)};
    const auto& expect = t.config.expect;
    if (expect && std::string_view(buf.data(), n).find(*expect) == std::string_view::npos)
        co_return ProbeResult{false, "unexpected reply"};
    co_return ProbeResult{true, "reply"};
}

}  // namespace lbd::health::detail
