// http and https: GET the configured path, healthy when the status code is in
// expect_status. Only the status line is read.
#include "health/probe_util.h"  // first: it includes <utility> before Asio

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>

#include "health/http.h"
#include "health/tls_context.h"

namespace lbd::health::detail {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr size_t kMaxStatusLine = 1024;

template <class Stream>
asio::awaitable<ProbeResult> exchange(Stream& s, const Target& t, ProbeControl& ctl, bool tls)
{
    auto req = http_request(t, tls);
    boost::system::error_code ec;
    co_await asio::async_write(s, asio::buffer(req), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return ProbeResult{false, io_reason(ec, ctl, t)};
    std::array<char, kMaxStatusLine> buf;
    size_t have = 0;
    for (;;) {
        size_t n = co_await s.async_read_some(asio::buffer(buf.data() + have, buf.size() - have),
                                              asio::redirect_error(asio::use_awaitable, ec));
        have += n;
        auto scan = scan_status(std::string_view(buf.data(), have), buf.size());
        if (scan.kind == StatusScan::Status) {
            auto text = "status " + std::to_string(scan.status);
            co_return ProbeResult{t.config.expect_status.contains(scan.status), std::move(text)};
        }
        if (scan.kind == StatusScan::Bad)
            co_return ProbeResult{false, "bad response"};
        if (ec) {
            if (ctl.stopping())
                co_return ProbeResult{false, io_reason(ec, ctl, t)};
            if (have > 0)
                co_return ProbeResult{false, "bad response (closed within the status line)"};
            if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
                co_return ProbeResult{false, "bad response (closed without answering)"};
            co_return ProbeResult{false, io_reason(ec, ctl, t)};
        }
    }
}

bool is_ip_literal(const std::string& s)
{
    return IpAddr::parse(s).has_value();
}

}  // namespace

asio::awaitable<ProbeResult> probe_http(const Target& t, ProbeControl& ctl, ProbeEnv& env, bool tls)
{
    tcp::endpoint ep(to_asio(t.probe_address()), t.probe_port());
    auto ex = co_await asio::this_coro::executor;
    boost::system::error_code ec;
    if (!tls) {
        tcp::socket sock(ex);
        if (auto why = open_socket(sock, ep.protocol(), t); !why.empty())
            co_return ProbeResult{false, why};
        auto guard = ctl.on_stop([&sock] {
            boost::system::error_code ignored;
            sock.close(ignored);
        });
        co_await sock.async_connect(ep, asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return ProbeResult{false, io_reason(ec, ctl, t)};
        sock.set_option(tcp::socket::linger(true, 0), ec);
        co_return co_await exchange(sock, t, ctl, false);
    }

    auto& ctx = t.config.tls_verify ? env.tls().verifying() : env.tls().insecure();
    asio::ssl::stream<tcp::socket> stream(ex, ctx);
    auto& sock = stream.next_layer();
    if (auto why = open_socket(sock, ep.protocol(), t); !why.empty())
        co_return ProbeResult{false, why};
    auto guard = ctl.on_stop([&sock] {
        boost::system::error_code ignored;
        sock.close(ignored);
    });
    co_await sock.async_connect(ep, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return ProbeResult{false, io_reason(ec, ctl, t)};
    sock.set_option(tcp::socket::linger(true, 0), ec);

    SSL* ssl = stream.native_handle();
    const auto& host = t.config.host;
    if (host && !is_ip_literal(*host))
        SSL_set_tlsext_host_name(ssl, host->c_str());
    if (t.config.tls_verify) {
        auto name = host ? *host : t.probe_address().str();
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        bool set = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1
                                       : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0) == 1;
        if (!set)
            co_return ProbeResult{false, "tls: cannot set the name to verify"};
    }
    co_await stream.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        if (ctl.stopping() || ec.category() != asio::error::get_ssl_category())
            co_return ProbeResult{false, io_reason(ec, ctl, t)};
        std::string why = ec.message();
        if (long v = SSL_get_verify_result(ssl); v != X509_V_OK)
            why = X509_verify_cert_error_string(v);
        co_return ProbeResult{false, "tls handshake: " + why};
    }
    co_return co_await exchange(stream, t, ctl, true);
}

}  // namespace lbd::health::detail
