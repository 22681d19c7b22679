// Half-open tcp checks: a SYN from a raw socket, the SYN-ACK taken as
// success, an RST as "refused". One SynProber per loop (ProbeEnv makes it on
// the first half-open probe, so lbd without such checks opens no raw socket).
//
// Per family: one raw socket (IPPROTO_TCP, no IP_HDRINCL; the source address
// of each SYN goes in an IP_PKTINFO / IPV6_PKTINFO control message), a
// classic BPF filter on it that queues only SYN-ACKs and RSTs to our ports,
// and a few source ports reserved by TCP sockets bound to them and never
// listening: nothing else on the host takes those ports, and the kernel
// answers the SYN-ACKs that come to them with an RST, which closes the
// backend's half-open connection.
//
// SYNs of the probes started in one turn of the loop are sent together
// (sendmmsg, posted once); replies are read with recvmmsg until the socket
// is empty. A probe waits for its reply without a timer of its own: the
// prober keeps the deadlines in one FIFO per timeout value (in the order the
// probes started, so also in the order they expire) behind one timer, armed
// for the earliest. A reply, the deadline or an abort resumes the probe.
#pragma once

#include <utility>  // before Asio: 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "health/probe.h"
#include "health/syn_packet.h"

namespace lbd::health {

class SynProber : public std::enable_shared_from_this<SynProber> {
public:
    /// Source ports reserved per family.
    static constexpr size_t kPorts = 16;

    explicit SynProber(const boost::asio::any_io_executor& ex, uint64_t secret);
    ~SynProber();
    SynProber(const SynProber&) = delete;
    SynProber& operator=(const SynProber&) = delete;

    /// One half-open probe of t.probe_address():t.probe_port(), bounded by
    /// t.config.timeout (it begins and ends ctl, without arming ctl's own
    /// deadline; run_probe calls it); ctl's abort ends it. Results: "syn-ack", "refused",
    /// "timeout after ...", or why it could not be sent.
    boost::asio::awaitable<ProbeResult> probe(const Target& t, ProbeControl& ctl);

    /// Closes the raw sockets (releasing the reserved ports) and the
    /// deadline timer, so nothing of the prober waits on the loop. Probes in
    /// flight must have been aborted; a later probe opens the sockets again.
    void close();

    struct FlowKey {  // a probe in flight: the backend's address and port, and our port
        IpAddr address;
        uint16_t port = 0;
        uint16_t local_port = 0;
        bool operator==(const FlowKey&) const = default;
    };
    struct FlowHash {
        size_t operator()(const FlowKey& k) const noexcept;
    };

    /// How a suspended probe is resumed.
    using Waiter = boost::asio::async_result<boost::asio::use_awaitable_t<>, void()>::handler_type;

    /// A probe waiting for its reply; lives in the probe's frame.
    struct Pending {
        SynProber* prober = nullptr;
        FlowKey key;
        uint32_t isn = 0;
        bool done = false;
        bool ok = false;
        bool timed_out = false;
        const char* reason = nullptr;  ///< a static text, else `error`
        std::string error;
        std::optional<Waiter> waiter;

        /// No longer in flight; resumes the probe: now (from the prober's
        /// own handlers), or posted (from anywhere else).
        void stop(bool resume_now);
        /// Done with this result, then stop().
        void finish(bool success, const char* why, bool resume_now);
    };

private:
    struct Family;
    struct Outgoing;

    boost::asio::any_io_executor ex_;
    uint32_t secret_;
    uint32_t counter_ = 0;
    std::unique_ptr<Family> v4_, v6_;
    std::unordered_map<FlowKey, Pending*, FlowHash> in_flight_;
    bool flush_posted_ = false;

    struct Deadline {
        std::chrono::steady_clock::time_point at;
        FlowKey key;
        uint32_t isn = 0;
    };
    /// Per timeout: the probes in the order they started (and expire).
    std::map<std::chrono::milliseconds, std::deque<Deadline>> deadlines_;
    boost::asio::steady_timer timer_;
    std::optional<std::chrono::steady_clock::time_point> armed_for_;

    std::vector<Pending*> expired_;

    void arm();
    void expire();

    Family* family(bool v4, std::string& error);
    /// Our source address towards dst (the route's), learned through a UDP
    /// socket's connect() and kept in the target's memo.
    std::string source_for(Family& fam, const IpAddr& dst, uint16_t port, ProbeControl::Memo& memo, IpAddr& out);
    void queue(Family& fam, const FlowKey& key, const IpAddr& src, uint32_t isn);
    void flush(Family& fam);
    void wait_writable(Family& fam);
    void wait_readable(Family& fam);
    void drain(Family& fam);
    void on_reply(const syn::Reply& r);
};

}  // namespace lbd::health
