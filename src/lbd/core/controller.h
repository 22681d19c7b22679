// The control protocol's request handler (docs/control-protocol.md). Every
// change is validated as a whole config before anything happens; a refused
// request leaves the running and the persisted state exactly as they were.
// Pure: the datapath is reached through LbState (MapWriter) and StatsSource.
#pragma once

#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "lbd/core/config.h"
#include "lbd/core/lb_state.h"
#include "lbd/core/overrides.h"

namespace lbd {

class StatsSource {
public:
    virtual ~StatsSource() = default;
    virtual lbd_stats vip_stats(uint32_t vip_id) const = 0;
    virtual lbd_stats backend_stats(uint32_t id) const = 0;
    /// Backend id -> active connection table entries.
    virtual std::map<uint32_t, uint64_t> active_flows() const = 0;
    /// Backend id -> the program's own active-flow counter (least-conn VIPs;
    /// docs/scheduling.md). Empty where the datapath keeps none.
    virtual std::map<uint32_t, int64_t> least_conn_active(const std::vector<uint32_t>& ids) const
    {
        (void)ids;
        return {};
    }
};

class Controller {
public:
    struct Hooks {
        std::function<void()> persist;                // save overrides + runtime state
        std::function<nlohmann::json()> status;       // fields of `status`
        std::function<nlohmann::json()> reload;       // result of `reload`
        std::function<void()> applied;                // after every applied change
        /// Health details of one backend (state, last check, last error,
        /// time in state); null when the VIP has no health checks.
        std::function<nlohmann::json(const std::string& vip, const IpAddr&)> backend_health;
        std::function<nlohmann::json()> bgp_status;             // `bgp.status`
        std::function<nlohmann::json(bool on)> maintenance;     // `maintenance`
    };

    Controller(Config& cfg, Overrides& overrides, LbState& state, const StatsSource& stats,
               Hooks hooks)
        : cfg_(cfg), ov_(overrides), st_(state), stats_(stats), hooks_(std::move(hooks))
    {
    }

    /// One request in, one response out; never throws.
    nlohmann::json handle(const nlohmann::json& request);

    /// The VIP list `lb list` prints.
    nlohmann::json list() const;
    /// One VIP as `lb show` prints it; nullopt if there is none by that name.
    std::optional<nlohmann::json> show(const std::string& name) const;

private:
    nlohmann::json create(const nlohmann::json& r);
    nlohmann::json add_backend(const nlohmann::json& r);
    nlohmann::json set_weight(const nlohmann::json& r);
    nlohmann::json remove_backend(const nlohmann::json& r);
    nlohmann::json remove_vip(const nlohmann::json& r);
    nlohmann::json set_health(const nlohmann::json& r);
    /// Validates `next` as the whole running config; if fine, makes it so.
    /// `before_apply` runs between persisting and applying (forced removal).
    nlohmann::json commit(Overrides next, const std::string& name,
                          const std::function<void()>& before_apply = {});
    VipConfig current(const std::string& name) const;  // throws if none
    VipSource source_of(const std::string& name) const;

    Config& cfg_;
    Overrides& ov_;
    LbState& st_;
    const StatsSource& stats_;
    Hooks hooks_;
};

}  // namespace lbd
