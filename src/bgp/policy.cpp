#include "bgp/policy.h"

#include <algorithm>
#include <cstdio>

#include "common/duration.h"

namespace lbd::bgp {

namespace {

std::string maintenance_reason(const BgpConfig& cfg)
{
    return cfg.maintenance_file.empty() ? "maintenance" : "maintenance file " + cfg.maintenance_file + " exists";
}

}  // namespace

std::string format_seconds(Clock::duration d)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(d).count());
    return buf;
}

std::string RouteAttributes::str() const
{
    std::string out = "next-hop " + next_hop.str();
    if (med)
        out += " med " + std::to_string(*med);
    if (!communities.empty()) {
        out += " communities";
        for (const auto& c : communities)
            out += " " + c.str();
    }
    return out;
}

std::string to_string(Action a)
{
    return a == Action::Announce ? "announce" : "withdraw";
}

Policy::Policy(BgpConfig cfg) : cfg_(std::move(cfg)) {}

void Policy::set_config(BgpConfig cfg)
{
    cfg_ = std::move(cfg);
}

std::vector<RouteChange> Policy::evaluate(const PolicyInputs& in, TimePoint now)
{
    std::map<Prefix, std::vector<const VipInput*>> groups;
    for (const auto& vip : in.vips)
        groups[host_prefix(vip.address)].push_back(&vip);

    deadline_.reset();
    std::vector<RouteChange> changes;
    auto emit = [&](Track& t) {
        auto& s = t.state;
        if (s.action == Action::Announce && t.sent != s.attributes) {
            changes.push_back({Action::Announce, s.prefix, s.attributes, s.reason});
            t.sent = s.attributes;
        } else if (s.action == Action::Withdraw && t.sent) {
            changes.push_back({Action::Withdraw, s.prefix, {}, s.reason});
            t.sent.reset();
        }
    };

    for (const auto& [prefix, vips] : groups) {
        auto [it, fresh] = tracks_.try_emplace(prefix);
        Track& t = it->second;
        if (fresh) {
            t.state.prefix = prefix;
            t.state.since = now;
        }
        decide(t, vips, in, now);
        emit(t);
    }
    for (auto it = tracks_.begin(); it != tracks_.end();) {
        if (groups.contains(it->first)) {
            ++it;
            continue;
        }
        auto& s = it->second.state;
        s.action = Action::Withdraw;
        s.reason = "no VIP on " + s.prefix.addr.str() + " any more";
        emit(it->second);
        it = tracks_.erase(it);
    }
    return changes;
}

void Policy::decide(Track& t, const std::vector<const VipInput*>& vips, const PolicyInputs& in, TimePoint now)
{
    auto& s = t.state;
    s.vips.clear();
    const VipInput* failing = nullptr;
    uint32_t failing_quorum = 0;
    for (const auto* v : vips) {
        s.vips.push_back(v->name);
        uint32_t quorum = v->bgp.withdraw_quorum.value_or(cfg_.withdraw_quorum);
        if (!failing && v->healthy < quorum) {
            failing = v;
            failing_quorum = quorum;
        }
    }

    // Health history, whatever else applies.
    if (failing) {
        t.healthy_since.reset();
        if (t.ever_healthy)
            t.held = true;
    } else {
        if (!t.healthy_since)
            t.healthy_since = now;
        t.ever_healthy = true;
        if (t.held && now - *t.healthy_since >= cfg_.hold_down)
            t.held = false;
    }

    Action action = Action::Withdraw;
    bool depref = false;
    if (!in.running) {
        s.reason = "lbd stopping";
    } else if (in.maintenance && cfg_.maintenance_action == MaintenanceAction::Withdraw) {
        s.reason = maintenance_reason(cfg_);
    } else if (failing) {
        s.reason = "vip " + failing->name + ": " + std::to_string(failing->healthy) + " healthy backend" +
                   (failing->healthy == 1 ? "" : "s") + " < quorum " + std::to_string(failing_quorum);
    } else if (t.held) {
        s.reason = "hold-down: eligible for " + format_seconds(now - *t.healthy_since) + " of " +
                   format_duration(cfg_.hold_down);
        auto end = *t.healthy_since + cfg_.hold_down;
        if (!deadline_ || end < *deadline_)
            deadline_ = end;
    } else {
        action = Action::Announce;
        depref = in.maintenance;
    }
    if (action != s.action)
        s.since = now;
    s.action = action;
    if (action == Action::Announce) {
        s.attributes = attributes(s.prefix, *vips.front(), depref);
        s.reason = depref ? maintenance_reason(cfg_) + ": announced with " + s.attributes.str() : "announced";
    }
}

RouteAttributes Policy::attributes(const Prefix& p, const VipInput& first, bool depref) const
{
    RouteAttributes a;
    a.next_hop = p.addr.is_v4() ? cfg_.next_hop : NextHop{cfg_.next_hop_v6};
    a.med = first.bgp.med ? first.bgp.med : cfg_.med;
    a.communities = first.bgp.communities.value_or(cfg_.communities);
    if (depref) {
        a.med = cfg_.maintenance_med;
        if (auto c = cfg_.maintenance_community;
            c && std::find(a.communities.begin(), a.communities.end(), *c) == a.communities.end())
            a.communities.push_back(*c);
    }
    return a;
}

std::vector<RouteChange> Policy::snapshot(bool withdrawals) const
{
    std::vector<RouteChange> out;
    for (const auto& [prefix, t] : tracks_) {
        if (t.sent)
            out.push_back({Action::Announce, prefix, *t.sent, t.state.reason});
        else if (withdrawals)
            out.push_back({Action::Withdraw, prefix, {}, t.state.reason});
    }
    return out;
}

std::vector<PrefixState> Policy::prefixes() const
{
    std::vector<PrefixState> out;
    out.reserve(tracks_.size());
    for (const auto& [prefix, t] : tracks_)
        out.push_back(t.state);
    return out;
}

}  // namespace lbd::bgp
