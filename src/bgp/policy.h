// Route health injection policy: from VIP health, the maintenance file and
// whether lbd is running, which prefixes to announce (with which attributes)
// and which to withdraw, and the changes to send. Pure: no clocks (every call
// takes the time), no I/O.
//
// Rules, per prefix (the /32 or /128 of a VIP address; VIPs sharing an
// address share it), first match wins:
//   1. lbd stopping                              -> withdraw
//   2. maintenance file present, action withdraw -> withdraw
//   3. a VIP on the prefix has fewer healthy backends than its quorum -> withdraw
//   4. hold-down: health failed after having been good, and has not yet been
//      good again for hold_down                  -> withdraw
//   5. maintenance file present, action depref   -> announce with maintenance_med
//                                                   and maintenance_community added
//   6. otherwise                                 -> announce
// Health is tracked whatever the other inputs are, so hold-down runs during
// maintenance too. The maintenance file going away re-announces at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bgp/bgp_config.h"
#include "common/addr.h"

namespace lbd::bgp {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

/// One VIP's state as the policy needs it.
struct VipInput {
    std::string name;
    IpAddr address;
    uint32_t healthy = 0;  ///< backends currently able to serve
    VipBgp bgp;            ///< the VIP's own med, communities, withdraw_quorum
};

struct PolicyInputs {
    bool running = true;       ///< false once lbd is stopping: everything is withdrawn
    bool maintenance = false;  ///< the maintenance file exists
    std::vector<VipInput> vips;
};

struct RouteAttributes {
    NextHop next_hop;
    std::optional<uint32_t> med;
    std::vector<Community> communities;  ///< standard and large, in config order

    bool operator==(const RouteAttributes&) const = default;
    /// "next-hop self med 100 community 65001:100" (for logs and status).
    std::string str() const;
};

/// "2.1s": one decimal, for reasons and status.
std::string format_seconds(Clock::duration d);

enum class Action : uint8_t { Announce, Withdraw };
std::string to_string(Action a);

/// What the policy wants for one prefix now.
struct PrefixState {
    Prefix prefix;
    std::vector<std::string> vips;  ///< names of the VIPs on it
    Action action = Action::Withdraw;
    RouteAttributes attributes;      ///< meaningful when announced
    std::string reason;              ///< "announced", "maintenance file ... exists", ...
    TimePoint since{};               ///< when `action` last changed
};

/// One UPDATE to ask ExaBGP for.
struct RouteChange {
    Action action = Action::Withdraw;
    Prefix prefix;
    RouteAttributes attributes;  ///< for announcements
    std::string reason;

    bool operator==(const RouteChange&) const = default;
};

class Policy {
public:
    explicit Policy(BgpConfig cfg);

    /// New attributes, quorum, hold-down or maintenance action; takes effect
    /// with the next evaluate(). Health history and what was sent stay.
    void set_config(BgpConfig cfg);

    /// Decides every prefix at `now` and returns what changed since the last
    /// call: announcements (new prefixes or new attributes) and withdrawals
    /// of prefixes announced before. Nothing when nothing changed.
    std::vector<RouteChange> evaluate(const PolicyInputs& in, TimePoint now);

    /// Every announced prefix as an announcement and, with `withdrawals`,
    /// every known prefix that is not announced as a withdrawal: to bring a
    /// restarted (or possibly out of step) ExaBGP to the current state.
    std::vector<RouteChange> snapshot(bool withdrawals) const;

    /// All prefixes, ordered, as of the last evaluate().
    std::vector<PrefixState> prefixes() const;

    /// When a hold-down ends: evaluate() again then. Unset when none runs.
    std::optional<TimePoint> next_deadline() const { return deadline_; }

    const BgpConfig& config() const { return cfg_; }

private:
    struct Track {
        PrefixState state;
        bool ever_healthy = false;             ///< health has been good since the prefix appeared
        bool held = false;                     ///< hold-down armed by a health failure
        std::optional<TimePoint> healthy_since;  ///< health good continuously since
        std::optional<RouteAttributes> sent;   ///< last announced and not withdrawn since
    };

    BgpConfig cfg_;
    std::map<Prefix, Track> tracks_;
    std::optional<TimePoint> deadline_;

    void decide(Track& t, const std::vector<const VipInput*>& vips, const PolicyInputs& in, TimePoint now);
    RouteAttributes attributes(const Prefix& p, const VipInput& first, bool depref) const;
};

}  // namespace lbd::bgp
