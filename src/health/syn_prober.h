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
// is empty. Nothing is allocated per probe: a probe in flight is an entry
// of a pool, found by its flow through an open-addressing table; its
// deadline sits in one FIFO per timeout value (in the order the probes
// started, so also in the order they expire) behind one timer, armed for
// the earliest. A reply, the deadline or a send error ends the probe and
// tells its Client, synchronously, from the prober's own handlers.
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
#include <vector>

#include "health/index_table.h"
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

    /// Who started a probe, told its result. At most one probe in flight per
    /// Client. A Client that goes away with a probe in flight must cancel()
    /// it first.
    class Client {
    public:
        /// The probe ended: "syn-ack" (ok), "refused", "timeout after ...",
        /// "unreachable", or why it could not be sent. Called from the
        /// prober's handlers (never from inside start() or cancel()); the
        /// Client may start its next probe from here.
        virtual void syn_result(ProbeResult r) = 0;

        /// What the prober keeps for this client's next probes: our source
        /// address towards the backend (the route's), and when it was learned.
        ProbeControl::Memo memo;

    protected:
        ~Client() = default;

    private:
        friend class SynProber;
        uint32_t entry_ = 0;  ///< 1 + index of its pool entry while in flight, else 0
    };

    /// Starts a half-open probe of t.probe_address():t.probe_port(), bounded
    /// by t.config.timeout; `now` is its start. nullopt: in flight, its result
    /// comes through c.syn_result(). Else the result at once (it could not
    /// be sent: no raw socket, no route, a tunnel target, no free port), and
    /// nothing is in flight.
    std::optional<ProbeResult> start(Client& c, const Target& t, TimePoint now);
    /// Ends c's probe in flight, if any, without a result.
    void cancel(Client& c);

    /// start() as a coroutine, bounded by ctl: ctl's abort ends it with
    /// "aborted" (run_probe calls it; it begins and ends ctl without arming
    /// ctl's own deadline).
    boost::asio::awaitable<ProbeResult> probe(const Target& t, ProbeControl& ctl);

    /// Closes the raw sockets (releasing the reserved ports) and the
    /// deadline timer, so nothing of the prober waits on the loop. Probes in
    /// flight must have been cancelled; a later probe opens the sockets again.
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

private:
    struct Family;
    struct Outgoing;
    /// How probe()'s coroutine is resumed.
    using Waiter = boost::asio::async_result<boost::asio::use_awaitable_t<>, void()>::handler_type;

    /// A probe in flight (or a free entry, client == nullptr).
    struct Entry {
        FlowKey key;
        uint32_t isn = 0;
        uint32_t timeout_ms = 0;
        Client* client = nullptr;
    };

    boost::asio::any_io_executor ex_;
    uint32_t secret_;
    uint32_t counter_ = 0;
    std::unique_ptr<Family> v4_, v6_;
    std::vector<Entry> entries_;
    std::vector<uint32_t> free_;  ///< indexes of free entries
    IndexTable<FlowKey, FlowHash> by_flow_;  ///< the entries in flight, by their key
    bool flush_posted_ = false;

    struct Deadline {
        TimePoint at;
        uint32_t entry = 0;
        uint32_t isn = 0;
    };
    /// Per timeout: the probes in the order they started (and expire).
    std::map<std::chrono::milliseconds, std::deque<Deadline>> deadlines_;
    boost::asio::steady_timer timer_;
    std::optional<TimePoint> armed_for_;
    std::vector<std::pair<uint32_t, uint32_t>> expired_;  ///< (entry, isn)

    void arm();
    void expire();

    /// The family's sockets, opened on first use (and again kReopenAfter
    /// a failure); nullptr and `error` when they cannot be.
    Family* family(bool v4, TimePoint now, std::string& error);
    /// Our source address towards the target: its `source` (checked to be
    /// one of ours), else the one the route to it gives (learned through a
    /// UDP socket's connect()); kept in the client's memo for kSourceTtl.
    std::string source_for(Family& fam, const Target& t, ProbeControl::Memo& memo, TimePoint now, IpAddr& out);
    void queue(Family& fam, const FlowKey& key, const IpAddr& src, uint32_t isn);
    void flush(Family& fam);
    void wait_writable(Family& fam);
    void wait_readable(Family& fam);
    void drain(Family& fam);
    void on_reply(const syn::Reply& r);

    /// The entry in flight for `key`, else nullptr.
    Entry* find(const FlowKey& key);
    uint32_t add(const FlowKey& key, uint32_t isn, uint32_t timeout_ms, Client& c);
    /// Frees the entry in flight; returns its client (nullptr if it was free).
    Client* remove(uint32_t index);
    /// Ends an entry in flight with a result for its client.
    void finish(uint32_t index, ProbeResult r);
};

}  // namespace lbd::health
