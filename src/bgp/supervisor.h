// BgpSpeaker: runs ExaBGP as a supervised child on lbd's io_context and
// keeps the routers' view of the VIP prefixes equal to what the policy wants.
//
//   lbd (BgpSpeaker) <-unix socket-> relay <-stdin/stdout-> ExaBGP <-BGP-> routers
//
// ExaBGP starts the relay itself (the `run` line of the configuration the
// speaker writes into a private runtime directory); the relay connects back
// to the speaker's socket. The speaker sends one API command per neighbor and
// change, reads the acknowledgements and the neighbor and sent-update events,
// logs ExaBGP's output, restarts ExaBGP with exponential backoff when it
// exits and then re-announces the current state.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bgp/bgp_config.h"
#include "bgp/policy.h"

namespace boost::asio {
class io_context;
}

namespace lbd::bgp {

struct SpeakerOptions {
    /// The API process ExaBGP runs, without its last argument (the socket
    /// path the speaker appends), e.g. {"/usr/sbin/lbd", "--exabgp-relay"}.
    /// Words are limited to letters, digits and _ . / + : @ = % -.
    std::vector<std::string> relay;
    /// Private directory for exabgp.conf and api.sock, made mode 0700. Empty:
    /// a fresh one under $TMPDIR (or /tmp), removed by stop().
    std::string runtime_dir;
    std::chrono::milliseconds backoff_min{500};   ///< first restart delay, doubled per quick exit
    std::chrono::milliseconds backoff_max{10000};
    std::chrono::milliseconds stable_after{30000};  ///< a run this long resets the backoff
    std::chrono::milliseconds stop_timeout{3000};   ///< stop(): longest wait for the withdrawals
};

struct NeighborStatus {
    IpAddr address;
    uint32_t peer_as = 0;
    std::string state = "idle";  ///< idle, connected (OPEN exchange), established, down
    TimePoint since{};
    std::string last_error;      ///< ExaBGP's reason for the last "down"
    std::vector<Prefix> routes;  ///< prefixes ExaBGP has sent to it and not withdrawn
};

struct PrefixStatus {
    PrefixState state;
    std::vector<IpAddr> sent_to;  ///< established neighbors ExaBGP has sent it to
};

struct BgpStatus {
    bool exabgp_running = false;
    int exabgp_pid = 0;
    uint64_t exabgp_starts = 0;
    std::string last_exit;                 ///< how the previous ExaBGP ended, if one did
    std::optional<TimePoint> next_start;   ///< a restart is scheduled (backoff)
    bool api_connected = false;            ///< the relay is connected
    bool maintenance = false;
    bool stopping = false;
    std::vector<NeighborStatus> neighbors;
    std::vector<PrefixStatus> prefixes;
};

/// Human-readable lines for `lbctl bgp status`.
std::string format_status(const BgpStatus& s, TimePoint now);

class BgpSpeaker {
public:
    /// `cfg` must have passed validate_bgp. Nothing starts before start().
    BgpSpeaker(boost::asio::io_context& io, BgpConfig cfg, SpeakerOptions opts);
    /// Kills a still running ExaBGP (no withdrawal: use stop() for that).
    ~BgpSpeaker();
    BgpSpeaker(const BgpSpeaker&) = delete;
    BgpSpeaker& operator=(const BgpSpeaker&) = delete;

    /// Makes the runtime directory and socket, writes the configuration and
    /// starts ExaBGP. Throws std::runtime_error (or std::invalid_argument for
    /// a relay word ExaBGP could not take) when that fails.
    void start();

    /// New inputs: evaluates the policy now and sends what changed. (While
    /// stopping, `running` stays false whatever `in` says.)
    void update(PolicyInputs in);
    /// Only the maintenance flag changes (the MaintenanceWatch callback).
    void set_maintenance(bool present);

    /// A changed config: restarts ExaBGP only when the sessions (neighbors,
    /// AS, addresses, hold time, graceful restart, program) changed; new
    /// attributes or policy are sent as new announcements.
    void reconfigure(BgpConfig cfg);

    /// Neighbors, each prefix with its decision and reason, ExaBGP's state.
    BgpStatus status();

    /// Withdraws every prefix, waits until ExaBGP has sent the withdrawals
    /// (at most stop_timeout), terminates and reaps ExaBGP, removes the
    /// runtime files, then calls `done` on the io_context.
    void stop(std::function<void()> done);

    class Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace lbd::bgp
