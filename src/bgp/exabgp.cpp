#include "bgp/exabgp.h"

#include <algorithm>
#include <stdexcept>

namespace lbd::bgp::exabgp {

namespace {

const char* family_words(Family f)
{
    return f == Family::V4 ? "ipv4 unicast" : "ipv6 unicast";
}

std::string community_list(const std::vector<Community>& cs, bool large)
{
    std::string out;
    for (const auto& c : cs)
        if (c.large == large)
            out += (out.empty() ? "" : " ") + c.str();
    return out;
}

std::vector<std::string_view> words(std::string_view line)
{
    std::vector<std::string_view> out;
    while (!line.empty()) {
        auto start = line.find_first_not_of(' ');
        if (start == line.npos)
            break;
        line.remove_prefix(start);
        auto end = line.find(' ');
        out.push_back(line.substr(0, end));
        line.remove_prefix(end == line.npos ? line.size() : end);
    }
    return out;
}

}  // namespace

bool safe_word(std::string_view w)
{
    static constexpr std::string_view kPunct = "_./+:@=%-";
    return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               kPunct.find(c) != kPunct.npos;
    });
}

std::string config_text(const BgpConfig& cfg, const std::vector<std::string>& run)
{
    if (run.empty())
        throw std::invalid_argument("the API process command is empty");
    std::string run_line;
    for (const auto& w : run) {
        if (!safe_word(w))
            throw std::invalid_argument("'" + w + "' cannot stand in ExaBGP's configuration (allowed: letters, "
                                        "digits and _ . / + : @ = % -)");
        run_line += (run_line.empty() ? "" : " ") + w;
    }

    std::string out = "# Written by lbd for its own ExaBGP; changes are overwritten.\n";
    out += "process " + std::string(kProcessName) + " {\n";
    out += "    run " + run_line + ";\n";
    out += "    encoder text;\n";
    out += "}\n";
    for (const auto& nb : cfg.neighbors) {
        const IpAddr& local = nb.local_address ? *nb.local_address : cfg.local_address;
        out += "\nneighbor " + nb.address.str() + " {\n";
        out += "    router-id " + cfg.router_id.str() + ";\n";
        out += "    local-address " + local.str() + ";\n";
        out += "    local-as " + std::to_string(cfg.local_as) + ";\n";
        out += "    peer-as " + std::to_string(nb.peer_as) + ";\n";
        out += "    hold-time " + std::to_string(cfg.hold_time) + ";\n";
        if (!nb.md5_password.empty())
            out += "    md5-password " + nb.md5_password + ";\n";
        if (nb.passive)
            out += "    passive true;\n    listen 179;\n";
        if (cfg.graceful_restart) {
            out += "    manual-eor true;\n";
            out += "    capability {\n";
            out += "        graceful-restart " + std::to_string(*cfg.graceful_restart) + ";\n";
            out += "    }\n";
        }
        out += "    family {\n";
        if (nb.ipv4)
            out += "        ipv4 unicast;\n";
        if (nb.ipv6)
            out += "        ipv6 unicast;\n";
        out += "    }\n";
        out += "    api {\n";
        out += "        processes [ " + std::string(kProcessName) + " ];\n";
        out += "        neighbor-changes;\n";
        out += "        send {\n";
        out += "            parsed;\n";
        out += "            update;\n";
        out += "        }\n";
        out += "    }\n";
        out += "}\n";
    }
    return out;
}

std::vector<std::string> environment()
{
    return {
        "exabgp.daemon.user=root",  // the relay must reach lbd's private socket
        "exabgp.daemon.daemonize=false",
        "exabgp.log.destination=stdout",
        "exabgp.log.short=true",  // lbd's log adds the time
        "exabgp.api.ack=true",
        "exabgp.api.cli=false",
        "exabgp.api.encoder=text",
        "exabgp.tcp.bind=",
    };
}

std::string announce(const IpAddr& neighbor, const Prefix& p, const RouteAttributes& a)
{
    std::string out = "neighbor " + neighbor.str() + " announce route " + p.str() + " next-hop " + a.next_hop.str();
    if (a.med)
        out += " med " + std::to_string(*a.med);
    if (auto s = community_list(a.communities, false); !s.empty())
        out += " community [" + s + "]";
    if (auto s = community_list(a.communities, true); !s.empty())
        out += " large-community [" + s + "]";
    return out;
}

std::string withdraw(const IpAddr& neighbor, const Prefix& p)
{
    return "neighbor " + neighbor.str() + " withdraw route " + p.str();
}

std::string eor(const IpAddr& neighbor, Family f)
{
    return "neighbor " + neighbor.str() + " announce eor " + family_words(f);
}

std::vector<std::string> commands(const BgpConfig& cfg, const RouteChange& c)
{
    std::vector<std::string> out;
    for (const auto& nb : cfg.neighbors) {
        if (!nb.carries(c.prefix.addr.family))
            continue;
        out.push_back(c.action == Action::Announce ? announce(nb.address, c.prefix, c.attributes)
                                                   : withdraw(nb.address, c.prefix));
    }
    return out;
}

Message parse(std::string_view line)
{
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
        line.remove_suffix(1);
    Message m;
    auto w = words(line);
    if (w.empty())
        return m;
    if (w.size() == 1 && w[0] == "done") {
        m.kind = Message::Kind::Done;
        return m;
    }
    if (w.size() == 1 && w[0] == "error") {
        m.kind = Message::Kind::Error;
        return m;
    }
    if (w[0] == "shutdown") {
        m.kind = Message::Kind::Shutdown;
        return m;
    }
    if (w[0] != "neighbor" || w.size() < 3)
        return m;
    auto addr = IpAddr::parse(w[1]);
    if (!addr)
        return m;
    m.neighbor = *addr;
    if (w[2] == "connected" && w.size() == 3) {
        m.kind = Message::Kind::Connected;
    } else if (w[2] == "up" && w.size() == 3) {
        m.kind = Message::Kind::Up;
    } else if (w[2] == "down") {
        m.kind = Message::Kind::Down;
        auto dash = line.find(" - ");
        m.text = dash == line.npos ? std::string() : std::string(line.substr(dash + 3));
    } else if (w.size() >= 6 && w[2] == "send" && w[3] == "update") {
        if (w[4] == "route" && w[5] == "eor") {
            m.kind = Message::Kind::SentEor;
        } else if (w[4] == "announced" || w[4] == "withdrawn") {
            if (auto p = Prefix::parse(w[5])) {
                m.kind = w[4] == "announced" ? Message::Kind::SentAnnounced : Message::Kind::SentWithdrawn;
                m.prefix = *p;
            }
        }
    }
    return m;
}

std::string to_string(Message::Kind k)
{
    switch (k) {
    case Message::Kind::Done: return "done";
    case Message::Kind::Error: return "error";
    case Message::Kind::Shutdown: return "shutdown";
    case Message::Kind::Connected: return "connected";
    case Message::Kind::Up: return "up";
    case Message::Kind::Down: return "down";
    case Message::Kind::SentAnnounced: return "sent-announced";
    case Message::Kind::SentWithdrawn: return "sent-withdrawn";
    case Message::Kind::SentEor: return "sent-eor";
    case Message::Kind::Other: break;
    }
    return "other";
}

}  // namespace lbd::bgp::exabgp
