#include "health/probe.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "common/duration.h"
#include "health/probe_util.h"
#include "health/syn_prober.h"
#include "health/tls_context.h"

namespace lbd::health {

namespace asio = boost::asio;

std::string Target::endpoint() const
{
    if (config.type == CheckType::Icmp)
        return address.str();
    return Endpoint{address, probe_port()}.str();
}

// ------------------------------------------------------------ ProbeControl

std::shared_ptr<ProbeControl> ProbeControl::create(const asio::any_io_executor& ex)
{
    return std::make_shared<ProbeControl>(Private{}, ex);
}

ProbeControl::HookGuard ProbeControl::on_stop(std::function<void()> fn)
{
    hook_ = std::move(fn);
    if (stopping() && hook_)
        hook_();
    return HookGuard(*this);
}

void ProbeControl::begin(std::chrono::milliseconds timeout, bool arm)
{
    ++generation_;
    active_ = true;
    timed_out_ = false;
    aborted_ = false;
    timer_.expires_after(timeout);
    if (!arm)
        return;
    // The handler holds a reference so this outlives a wait that is already
    // queued when the owner lets go.
    timer_.async_wait([self = shared_from_this(), gen = generation_](const boost::system::error_code& ec) {
        if (!ec && self->active_ && self->generation_ == gen) {
            self->timed_out_ = true;
            self->fire();
        }
    });
}

void ProbeControl::end()
{
    active_ = false;
    hook_ = nullptr;
    timer_.cancel();
}

void ProbeControl::abort()
{
    if (!active_ || aborted_)
        return;
    aborted_ = true;
    fire();
}

void ProbeControl::fire()
{
    if (hook_) {
        auto hook = hook_;  // the hook may clear hook_ through its guard
        hook();
    }
}

// ---------------------------------------------------------------- ProbeEnv

asio::ssl::context& ProbeEnv::Tls::insecure()
{
    if (!insecure_) {
        insecure_.emplace(asio::ssl::context::tls_client);
        insecure_->set_verify_mode(asio::ssl::verify_none);
    }
    return *insecure_;
}

asio::ssl::context& ProbeEnv::Tls::verifying()
{
    if (!verifying_) {
        verifying_.emplace(asio::ssl::context::tls_client);
        verifying_->set_default_verify_paths();
        verifying_->set_verify_mode(asio::ssl::verify_peer);
    }
    return *verifying_;
}

ProbeEnv::ProbeEnv() : tls_(std::make_unique<Tls>()), rng_(std::random_device{}()) {}
ProbeEnv::~ProbeEnv() = default;

ProbeEnv::Tls& ProbeEnv::tls()
{
    return *tls_;
}

uint64_t ProbeEnv::random()
{
    return rng_();
}

void ProbeEnv::shutdown()
{
    if (syn_)
        syn_->close();
}

SynProber& ProbeEnv::syn(const asio::any_io_executor& ex)
{
    if (!syn_)
        syn_ = std::make_shared<SynProber>(ex, random());
    return *syn_;
}

// ----------------------------------------------------------------- helpers

namespace detail {

std::string timeout_reason(const Target& t)
{
    return "timeout after " + format_duration(t.config.timeout);
}

std::string io_reason(const boost::system::error_code& ec, const ProbeControl& ctl, const Target& t)
{
    if (ctl.timed_out())
        return timeout_reason(t);
    if (ctl.aborted())
        return "aborted";
    namespace err = asio::error;
    if (ec == err::connection_refused)
        return "refused";
    if (ec == err::host_unreachable || ec == err::network_unreachable)
        return "unreachable";
    if (ec == err::connection_reset)
        return "reset";
    if (ec == err::eof)
        return "closed by the backend";
    return ec.message();
}

std::string setup_socket(int fd, const Target& t)
{
    if (t.mark) {
        uint32_t mark = *t.mark;
        if (::setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0)
            return std::string("SO_MARK: ") + std::strerror(errno);
    }
    if (t.tunnel_to) {
        int hops = 1;
        const bool v4 = t.tunnel_to->is_v4();
        if (::setsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TTL : IPV6_UNICAST_HOPS, &hops,
                         sizeof hops) != 0)
            return std::string(v4 ? "IP_TTL: " : "IPV6_UNICAST_HOPS: ") + std::strerror(errno);
    }
    if (t.source) {
        if (t.source->family != t.address.family)
            return "source address " + t.source->str() + " is not of the backend's family";
        sockaddr_storage ss{};
        socklen_t len = 0;
        if (t.source->is_v4()) {
            auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
            sa->sin_family = AF_INET;
            std::memcpy(&sa->sin_addr, t.source->bytes.data(), 4);
            len = sizeof *sa;
        } else {
            auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
            sa->sin6_family = AF_INET6;
            std::memcpy(&sa->sin6_addr, t.source->bytes.data(), 16);
            len = sizeof *sa;
        }
        if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0)
            return "bind " + t.source->str() + ": " + std::strerror(errno);
    }
    return {};
}

}  // namespace detail

// --------------------------------------------------------------- run_probe

namespace {

asio::awaitable<ProbeResult> run_probe_io(const Target& t, ProbeControl& ctl, ProbeEnv& env)
{
    ctl.begin(t.config.timeout);
    ProbeResult r;
    try {
        switch (t.config.type) {
        case CheckType::Tcp: r = co_await detail::probe_tcp(t, ctl); break;
        case CheckType::Http: r = co_await detail::probe_http(t, ctl, env, false); break;
        case CheckType::Https: r = co_await detail::probe_http(t, ctl, env, true); break;
        case CheckType::Udp: r = co_await detail::probe_udp(t, ctl); break;
        case CheckType::Dns: r = co_await detail::probe_dns(t, ctl, env); break;
        case CheckType::Icmp: r = co_await detail::probe_icmp(t, ctl, env); break;
        case CheckType::Exec: r = co_await detail::probe_exec(t, ctl); break;
        }
    } catch (const std::exception& e) {
        r = {false, std::string("internal error: ") + e.what()};
    }
    // The deadline is strict: a result that came with it is a failure.
    if (ctl.timed_out())
        r = {false, detail::timeout_reason(t)};
    else if (ctl.aborted())
        r = {false, "aborted"};
    ctl.end();
    co_return r;
}

}  // namespace

asio::awaitable<ProbeResult> run_probe(const Target& t, ProbeControl& ctl, ProbeEnv& env)
{
    // Half-open: straight to the prober, which keeps the deadline itself
    // (no coroutine frame of run_probe's own per probe).
    if (t.config.type == CheckType::Tcp && t.config.half_open)
        return env.syn(ctl.executor()).probe(t, ctl);
    return run_probe_io(t, ctl, env);
}

}  // namespace lbd::health
