#include "health/syn_prober.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "lbd_hash.h"

#include <cerrno>
#include <cstring>
#include <tuple>

#include "common/duration.h"

namespace lbd::health {

namespace asio = boost::asio;

namespace {

constexpr size_t kBatch = 64;          // messages per sendmmsg / recvmmsg
constexpr size_t kReplyBuffer = 128;   // an IPv4 header (60 at most) and a TCP header's first 20 bytes fit
constexpr int kSocketBuffer = 1 << 20;
constexpr auto kSourceTtl = std::chrono::seconds(30);
constexpr auto kReopenAfter = std::chrono::seconds(30);

socklen_t to_sockaddr(const IpAddr& a, uint16_t port, sockaddr_storage& ss)
{
    ss = {};
    if (a.is_v4()) {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(port);
        std::memcpy(&sa->sin_addr, a.bytes.data(), 4);
        return sizeof *sa;
    }
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(port);
    std::memcpy(&sa->sin6_addr, a.bytes.data(), 16);
    return sizeof *sa;
}

IpAddr from_sockaddr(const sockaddr_storage& ss)
{
    IpAddr a;
    if (ss.ss_family == AF_INET) {
        std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, 4);
    } else {
        a.family = Family::V6;
        std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, 16);
    }
    return a;
}

std::string errno_text(const char* what, int err)
{
    return std::string(what) + ": " + std::strerror(err);
}

}  // namespace

size_t SynProber::FlowHash::operator()(const FlowKey& k) const noexcept
{
    uint64_t lo, hi;
    std::memcpy(&lo, k.address.bytes.data(), 8);
    std::memcpy(&hi, k.address.bytes.data() + 8, 8);
    uint64_t h = lo * 0x9e3779b97f4a7c15ull + hi * 0xc2b2ae3d27d4eb4full +
                 (uint64_t{k.port} << 16 | k.local_port) * 0x165667b19e3779f9ull;
    return h ^ (h >> 29) ^ (h >> 47);
}

/// A SYN waiting for the next flush.
struct SynProber::Outgoing {
    FlowKey key;
    uint32_t isn = 0;
    sockaddr_storage to{};
    socklen_t to_len = 0;
    syn::SynDatagram packet;  // with its IP header (IP_HDRINCL / IPV6_HDRINCL)
};

struct SynProber::Family {
    Family(const asio::any_io_executor& ex, bool is_v4) : v4(is_v4), raw(ex) {}
    ~Family()
    {
        for (int fd : reservers)
            ::close(fd);
        if (udp >= 0)
            ::close(udp);
    }

    bool v4;
    asio::posix::stream_descriptor raw;  // the raw socket; closed with it
    std::vector<int> reservers;          // TCP sockets holding our source ports
    std::vector<uint16_t> ports;
    size_t next_port = 0;
    int udp = -1;                        // connected to a backend to learn our source address for it
    std::vector<Outgoing> out;
    bool waiting_writable = false;
    std::string open_error;
    TimePoint retry_at{};

    // Reused for each sendmmsg / recvmmsg.
    std::vector<mmsghdr> send_msgs;
    std::vector<iovec> send_iov;
    std::array<std::array<uint8_t, kReplyBuffer>, kBatch> reply_buf{};
    std::array<sockaddr_storage, kBatch> reply_from{};
    std::array<iovec, kBatch> reply_iov{};
    std::array<mmsghdr, kBatch> reply_msgs{};

    /// Opens the raw socket, reserves the ports, attaches the filter. Empty
    /// on success, else why not.
    std::string open()
    {
        const int af = v4 ? AF_INET : AF_INET6;
        int fd = ::socket(af, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
            int err = errno;
            return errno_text("raw socket", err) + (err == EPERM || err == EACCES ? " (needs CAP_NET_RAW)" : "");
        }
        boost::system::error_code ec;
        raw.assign(fd, ec);
        if (ec) {
            ::close(fd);
            return "raw socket: " + ec.message();
        }
        for (size_t i = 0; i < kPorts; ++i) {
            int s = ::socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s < 0)
                return errno_text("socket", errno);
            reservers.push_back(s);
            int one = 1;
            if (!v4)
                ::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
            sockaddr_storage ss{};
            IpAddr any;
            any.family = v4 ? lbd::Family::V4 : lbd::Family::V6;
            socklen_t len = to_sockaddr(any, 0, ss);
            if (::bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
                ::getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
                return errno_text("reserving a source port", errno);
            ports.push_back(ntohs(v4 ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port));
        }
        // We write the IP header: the kernel then skips building one per
        // packet (ip_append_data), and the source address is ours to set.
        int one = 1;
        if (::setsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_HDRINCL : IPV6_HDRINCL, &one, sizeof one) != 0)
            return errno_text(v4 ? "IP_HDRINCL" : "IPV6_HDRINCL", errno);
        auto filter = syn::reply_filter(ports, v4);
        sock_fprog prog{static_cast<unsigned short>(filter.size()), filter.data()};
        if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0)
            return errno_text("SO_ATTACH_FILTER", errno);
        for (int opt : {SO_RCVBUFFORCE, SO_SNDBUFFORCE})
            if (::setsockopt(fd, SOL_SOCKET, opt, &kSocketBuffer, sizeof kSocketBuffer) != 0)
                ::setsockopt(fd, SOL_SOCKET, opt == SO_RCVBUFFORCE ? SO_RCVBUF : SO_SNDBUF, &kSocketBuffer,
                             sizeof kSocketBuffer);
        // What came in before the filter was attached.
        std::array<uint8_t, 256> junk;
        while (::recv(fd, junk.data(), junk.size(), MSG_DONTWAIT) >= 0) {
        }
        udp = ::socket(af, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (udp < 0)
            return errno_text("socket", errno);
        for (size_t i = 0; i < kBatch; ++i) {
            reply_iov[i] = {reply_buf[i].data(), reply_buf[i].size()};
            reply_msgs[i] = {};
            reply_msgs[i].msg_hdr.msg_iov = &reply_iov[i];
            reply_msgs[i].msg_hdr.msg_iovlen = 1;
        }
        return {};
    }

    void close()
    {
        boost::system::error_code ignored;
        raw.close(ignored);
        for (int s : reservers)
            ::close(s);
        reservers.clear();
        ports.clear();
        if (udp >= 0)
            ::close(udp);
        udp = -1;
    }
};

SynProber::SynProber(const asio::any_io_executor& ex, uint64_t secret)
    : ex_(ex), secret_(static_cast<uint32_t>(secret ^ (secret >> 32))), timer_(ex)
{
}

SynProber::~SynProber()
{
    close();  // clients still holding a probe (a coroutine frame destroyed later) see none
}

void SynProber::close()
{
    for (auto& e : entries_)
        if (e.client)
            e.client->entry_ = 0;
    entries_.clear();
    free_.clear();
    by_flow_.clear();
    timer_.cancel();
    armed_for_.reset();
    deadlines_.clear();
    v4_.reset();  // a Family's destructor closes its sockets; their waits end with operation_aborted
    v6_.reset();
}

SynProber::Family* SynProber::family(bool v4, TimePoint now, std::string& error)
{
    auto& fam = v4 ? v4_ : v6_;
    if (fam && fam->open_error.empty())
        return fam.get();
    if (fam && now < fam->retry_at) {
        error = fam->open_error;
        return nullptr;
    }
    fam = std::make_unique<Family>(ex_, v4);
    fam->open_error = fam->open();
    if (!fam->open_error.empty()) {
        fam->close();
        fam->retry_at = now + kReopenAfter;
        fam->open_error = "half-open: " + fam->open_error;
        static bool logged[2] = {false, false};
        if (!logged[v4 ? 0 : 1]) {
            logged[v4 ? 0 : 1] = true;
            spdlog::error("health: half-open tcp checks ({}) cannot run: {}; they fail until it can", v4 ? "IPv4" : "IPv6",
                          fam->open_error);
        }
        error = fam->open_error;
        return nullptr;
    }
    spdlog::info("health: half-open tcp checks ({}): raw socket open, {} source ports reserved", v4 ? "IPv4" : "IPv6",
                 fam->ports.size());
    wait_readable(*fam);
    return fam.get();
}

std::string SynProber::source_for(Family& fam, const Target& t, ProbeControl::Memo& memo, TimePoint now, IpAddr& out)
{
    const IpAddr& dst = t.probe_address();
    // Kept per target (no lookup), checked again every kSourceTtl: routes
    // and addresses change.
    if (memo.source && memo.source->family == dst.family && now - memo.learned < kSourceTtl &&
        (!t.source || *t.source == *memo.source)) {
        out = *memo.source;
        return {};
    }
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (t.source) {
        // The SYN carries whatever source we write: make sure it is one of
        // ours (else the answers go elsewhere and the probe only times out).
        if (t.source->family != dst.family)
            return "source address " + t.source->str() + " is not of the backend's family";
        const int s = ::socket(dst.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return errno_text("socket", errno);
        len = to_sockaddr(*t.source, 0, ss);
        const int rc = ::bind(s, reinterpret_cast<sockaddr*>(&ss), len);
        const int err = errno;
        ::close(s);
        if (rc != 0)
            return "bind " + t.source->str() + ": " + std::strerror(err);
        out = *t.source;
    } else {
        // connect() on a UDP socket sends nothing: it only picks the route,
        // and with it our source address.
        len = to_sockaddr(dst, t.probe_port(), ss);
        if (::connect(fam.udp, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
            int err = errno;
            if (err == ENETUNREACH || err == EHOSTUNREACH)
                return "unreachable";
            return errno_text("finding the source address", err);
        }
        len = sizeof ss;
        if (::getsockname(fam.udp, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
            return errno_text("finding the source address", errno);
        out = from_sockaddr(ss);
    }
    memo.source = out;
    memo.learned = now;
    return {};
}

std::optional<ProbeResult> SynProber::start(Client& c, const Target& t, TimePoint now)
{
    if (c.entry_)
        cancel(c);
    if (t.tunnel_to)
        return ProbeResult{false, "half-open checks cannot go via tunnel"};
    const IpAddr& dst = t.probe_address();
    const uint16_t port = t.probe_port();
    std::string error;
    Family* fam = family(dst.is_v4(), now, error);
    if (!fam)
        return ProbeResult{false, std::move(error)};
    IpAddr src;
    if (auto why = source_for(*fam, t, c.memo, now, src); !why.empty())
        return ProbeResult{false, std::move(why)};

    // A source port with no probe of this backend address and port in flight.
    FlowKey key{dst, port, 0};
    for (size_t i = 0; i < fam->ports.size() && !key.local_port; ++i) {
        key.local_port = fam->ports[fam->next_port++ % fam->ports.size()];
        if (find(key))
            key.local_port = 0;
    }
    if (!key.local_port)
        return ProbeResult{false, "half-open: every source port has a probe of this backend in flight"};
    const uint32_t isn = lbd_hash_final(counter_++ ^ secret_);  // a bijection: distinct ISNs for 2^32 probes
    const uint32_t index = add(key, isn, static_cast<uint32_t>(t.config.timeout.count()), c);
    queue(*fam, key, src, isn);
    auto& fifo = deadlines_[t.config.timeout];
    fifo.push_back({now + t.config.timeout, index, isn});
    if (!armed_for_ || fifo.back().at < *armed_for_)
        arm();
    return std::nullopt;
}

void SynProber::cancel(Client& c)
{
    if (c.entry_)
        remove(c.entry_ - 1);  // its deadline stays queued and finds the entry gone (or another isn)
}

asio::awaitable<ProbeResult> SynProber::probe(const Target& t, ProbeControl& ctl)
{
    ctl.begin(t.config.timeout, false);  // the deadline is kept by the prober, not by ctl's timer
    struct End {
        ProbeControl& ctl;
        ~End() { ctl.end(); }
    } end{ctl};
    struct Waiting final : Client {
        std::optional<ProbeResult> result;
        std::optional<Waiter> waiter;
        void syn_result(ProbeResult r) override
        {
            result = std::move(r);
            if (waiter) {
                auto w = std::move(*waiter);
                waiter.reset();
                w();  // from the prober's handlers: runs the coroutine on to its end
            }
        }
    } w;
    struct Cancel {  // also when the frame is destroyed unresumed (its loop went away)
        SynProber& prober;
        Client& client;
        ~Cancel() { prober.cancel(client); }
    } cancel_on_exit{*this, w};
    w.memo = ctl.memo();
    auto failed = start(w, t, Clock::now());
    ctl.memo() = w.memo;
    if (failed)
        co_return std::move(*failed);
    // Abort: called from the checker's code, so the coroutine is resumed later.
    auto guard = ctl.on_stop([this, &w] {
        cancel(w);
        if (!w.result)
            w.result = ProbeResult{false, "aborted"};
        if (w.waiter) {
            auto waiter = std::move(*w.waiter);
            w.waiter.reset();
            asio::post(ex_, std::move(waiter));
        }
    });
    if (!w.result)
        co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
            [&w](Waiter waiter) { w.waiter.emplace(std::move(waiter)); }, asio::use_awaitable);
    co_return std::move(*w.result);
}

SynProber::Entry* SynProber::find(const FlowKey& key)
{
    auto index = by_flow_.find(key, [this](uint32_t i) -> const FlowKey& { return entries_[i].key; });
    return index ? &entries_[*index] : nullptr;
}

uint32_t SynProber::add(const FlowKey& key, uint32_t isn, uint32_t timeout_ms, Client& c)
{
    uint32_t index;
    if (!free_.empty()) {
        index = free_.back();
        free_.pop_back();
    } else {
        index = static_cast<uint32_t>(entries_.size());
        entries_.emplace_back();
    }
    entries_[index] = Entry{key, isn, timeout_ms, &c};
    c.entry_ = index + 1;
    by_flow_.insert(index, [this](uint32_t i) -> const FlowKey& { return entries_[i].key; });
    return index;
}

SynProber::Client* SynProber::remove(uint32_t index)
{
    Entry& e = entries_[index];
    Client* c = e.client;
    if (!c)
        return nullptr;
    by_flow_.erase(e.key, [this](uint32_t i) -> const FlowKey& { return entries_[i].key; });
    c->entry_ = 0;
    e.client = nullptr;
    free_.push_back(index);
    return c;
}

void SynProber::finish(uint32_t index, ProbeResult r)
{
    if (Client* c = remove(index))
        c->syn_result(std::move(r));
}

void SynProber::arm()
{
    std::optional<TimePoint> first;
    for (auto& [timeout, fifo] : deadlines_)
        if (!fifo.empty() && (!first || fifo.front().at < *first))
            first = fifo.front().at;
    armed_for_ = first;
    if (!first)
        return;
    timer_.expires_at(*first);
    timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
        if (ec)
            return;  // re-armed for an earlier deadline, or going away
        if (auto self = w.lock())
            self->expire();
    });
}

void SynProber::expire()
{
    const auto now = Clock::now();
    expired_.clear();
    for (auto& [timeout, fifo] : deadlines_) {
        while (!fifo.empty() && fifo.front().at <= now) {
            const Deadline& d = fifo.front();
            if (entries_.size() > d.entry && entries_[d.entry].client && entries_[d.entry].isn == d.isn)
                expired_.emplace_back(d.entry, d.isn);
            fifo.pop_front();
        }
    }
    arm();
    // Told last: a client may start its next probe (and arm again).
    auto batch = std::move(expired_);
    for (auto [index, isn] : batch) {
        const Entry& e = entries_[index];
        if (!e.client || e.isn != isn)
            continue;  // cancelled by a client told before it
        finish(index, ProbeResult{false, "timeout after " + format_duration(std::chrono::milliseconds(e.timeout_ms))});
    }
    expired_ = std::move(batch);
}

void SynProber::queue(Family& fam, const FlowKey& key, const IpAddr& src, uint32_t isn)
{
    Outgoing& o = fam.out.emplace_back();
    o.key = key;
    o.isn = isn;
    o.to_len = to_sockaddr(key.address, 0, o.to);  // a raw socket's port must be 0 (IPv6: or the protocol)
    o.packet = syn::build_syn_datagram({src, key.address, key.local_port, key.port, isn});
    if (!flush_posted_) {
        flush_posted_ = true;
        asio::post(ex_, [w = weak_from_this()] {
            if (auto self = w.lock()) {
                self->flush_posted_ = false;
                for (auto* f : {self->v4_.get(), self->v6_.get()})
                    if (f && !f->waiting_writable && !f->out.empty())
                        self->flush(*f);
            }
        });
    }
}

void SynProber::flush(Family& fam)
{
    auto& out = fam.out;
    fam.send_msgs.resize(out.size());
    fam.send_iov.resize(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
        fam.send_iov[i] = {out[i].packet.bytes.data(), out[i].packet.size};
        auto& h = fam.send_msgs[i].msg_hdr;
        h = {};
        h.msg_name = &out[i].to;
        h.msg_namelen = out[i].to_len;
        h.msg_iov = &fam.send_iov[i];
        h.msg_iovlen = 1;
    }
    const int fd = fam.raw.native_handle();
    std::vector<std::tuple<uint32_t, uint32_t, int>> failed;  // (entry, isn, errno)
    size_t i = 0;
    while (i < out.size()) {
        const auto n = static_cast<unsigned>(std::min(out.size() - i, kBatch));
        int sent = ::sendmmsg(fd, &fam.send_msgs[i], n, 0);
        if (sent > 0) {
            i += static_cast<size_t>(sent);
            continue;
        }
        const int err = errno;
        if (err == EINTR)
            continue;
        if (err == EAGAIN || err == EWOULDBLOCK) {  // the send buffer is full: the rest when there is room
            out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(i));
            wait_writable(fam);
            break;
        }
        // This SYN could not be sent: its probe fails (told below, once `out` is done with).
        const Outgoing& o = out[i];
        if (const Entry* e = find(o.key); e && e->isn == o.isn)
            failed.emplace_back(static_cast<uint32_t>(e - entries_.data()), o.isn, err);
        ++i;
    }
    if (!fam.waiting_writable)
        out.clear();
    for (auto [index, isn, err] : failed)
        if (entries_[index].client && entries_[index].isn == isn)
            finish(index, ProbeResult{false, err == ENETUNREACH || err == EHOSTUNREACH ? std::string("unreachable")
                                                                                        : errno_text("send", err)});
}

void SynProber::wait_writable(Family& fam)
{
    fam.waiting_writable = true;
    fam.raw.async_wait(asio::posix::descriptor_base::wait_write,
                       [w = weak_from_this(), f = &fam](const boost::system::error_code& ec) {
                           if (ec)
                               return;  // closed: the prober is going away
                           if (auto self = w.lock()) {
                               f->waiting_writable = false;
                               if (!f->out.empty())
                                   self->flush(*f);
                           }
                       });
}

void SynProber::wait_readable(Family& fam)
{
    fam.raw.async_wait(asio::posix::descriptor_base::wait_read,
                       [w = weak_from_this(), f = &fam](const boost::system::error_code& ec) {
                           if (ec)
                               return;
                           if (auto self = w.lock()) {
                               self->drain(*f);
                               self->wait_readable(*f);
                           }
                       });
}

void SynProber::drain(Family& fam)
{
    const int fd = fam.raw.native_handle();
    for (;;) {
        for (size_t i = 0; i < kBatch; ++i) {
            auto& h = fam.reply_msgs[i].msg_hdr;
            h.msg_name = &fam.reply_from[i];
            h.msg_namelen = sizeof(sockaddr_storage);
        }
        int n = ::recvmmsg(fd, fam.reply_msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return;  // EAGAIN: empty
        }
        for (int i = 0; i < n; ++i) {
            std::span<const uint8_t> data(fam.reply_buf[size_t(i)].data(), fam.reply_msgs[size_t(i)].msg_len);
            auto r = fam.v4 ? syn::parse_ipv4(data) : syn::parse_tcp(data, from_sockaddr(fam.reply_from[size_t(i)]));
            if (r)
                on_reply(*r);
        }
        if (static_cast<size_t>(n) < kBatch)
            return;
    }
}

void SynProber::on_reply(const syn::Reply& r)
{
    const Entry* e = find(FlowKey{r.source, r.source_port, r.destination_port});
    if (!e || e->isn + 1 != r.ack)
        return;  // not ours, or not for this probe (a late answer to an earlier one)
    finish(static_cast<uint32_t>(e - entries_.data()), ProbeResult{r.syn_ack, r.syn_ack ? "syn-ack" : "refused"});
}

}  // namespace lbd::health
