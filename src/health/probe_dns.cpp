// dns: one query over UDP (random id, RD set); healthy when the reply to it
// has RCODE NOERROR. Datagrams that do not answer the query are ignored.
#include "health/probe_util.h"  // first: it includes <utility> before Asio

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>

#include "health/dns_wire.h"

namespace lbd::health::detail {

namespace asio = boost::asio;
using asio::ip::udp;

asio::awaitable<ProbeResult> probe_dns(const Target& t, ProbeControl& ctl, ProbeEnv& env)
{
    std::array<uint8_t, dns::kMaxQuerySize> query;
    auto id = static_cast<uint16_t>(env.random());
    size_t qlen = dns::encode_query(query, id, t.config.query_name, t.config.query_type);
    if (qlen == 0)
        co_return ProbeResult{false, "'" + t.config.query_name + "' is not a DNS name"};
    std::span<const uint8_t> q(query.data(), qlen);

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
    co_await sock.async_send(asio::buffer(q.data(), q.size()), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return ProbeResult{false, io_reason(ec, ctl, t)};
    std::array<uint8_t, 1500> buf;
    for (;;) {
        size_t n = co_await sock.async_receive(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return ProbeResult{false, io_reason(ec, ctl, t)};
        std::span<const uint8_t> reply(buf.data(), n);
        if (!dns::answers(q, reply))
            continue;
        auto h = dns::parse_header(reply);
        if (h->rcode != dns::NoError)
            co_return ProbeResult{false, "rcode " + dns::rcode_name(h->rcode)};
        co_return ProbeResult{true, "NOERROR, " + std::to_string(h->ancount) + " answers"};
    }
}

}  // namespace lbd::health::detail
