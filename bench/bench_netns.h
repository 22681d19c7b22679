// The private network namespace of xdp_bench: a veth pair with static
// neighbours and routes so the program's bpf_fib_lookup succeeds and its
// XDP_TX frames really leave. Same addresses as tests/bpf/fixture.cpp (whose
// setup cannot be linked here: it is part of a gtest fixture), plus the
// benchmark's backend prefixes and two queues per device (one per CPU).
//
//   lbb0 02:00:00:00:00:01  198.18.60.1/24  fd00:1b:60::1/64  <-veth->  lbb1
//   next hop 198.18.60.254 / fd00:1b:60::fe = 02:00:00:00:00:fe (permanent)
//   198.19.0.0/16, fd00:1b:61::/64 via the next hop (backends)
//   10.0.0.0/8 via the next hop (the scheduling section's backends 10.k.8.0)
//
// The namespace is entered once with unshare(CLONE_NEWNET), before any
// thread is started, and dies with the process.
#pragma once

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace lbb {

/// Runs a shell command; returns "" or a description of the failure.
inline std::string sh(const std::string& cmd)
{
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p)
        return "cannot run: " + cmd;
    char buf[256];
    while (size_t n = fread(buf, 1, sizeof buf, p))
        out.append(buf, n);
    const int rc = pclose(p);
    if (rc == 0)
        return {};
    return "`" + cmd + "` failed (status " + std::to_string(rc) + "): " + out;
}

inline std::string write_sysctl(const std::string& name, const std::string& value)
{
    std::string path = "/proc/sys/" + name;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    std::ofstream f(path);
    f << value << "\n";
    f.close();
    return f ? std::string() : "cannot write " + path;
}

constexpr const char* kDev = "lbb0";   // where the program "receives"
constexpr const char* kPeer = "lbb1";  // gets the XDP_TX frames

/// Enters a fresh network namespace and builds the topology above. Returns
/// "" or what failed.
inline std::string make_bench_netns()
{
    if (unshare(CLONE_NEWNET) != 0)
        return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    const char* cmds[] = {
        "ip link set lo up",
        "ip link add lbb0 address 02:00:00:00:00:01 numtxqueues 2 numrxqueues 2 type veth "
        "peer name lbb1 address 02:00:00:00:00:02 numtxqueues 2 numrxqueues 2",
        "ip addr add 198.18.60.1/24 dev lbb0",
        "ip -6 addr add fd00:1b:60::1/64 dev lbb0 nodad",
        "ip link set lbb1 up",
        "ip link set lbb0 up",
        "ip neigh replace 198.18.60.254 lladdr 02:00:00:00:00:fe dev lbb0 nud permanent",
        "ip -6 neigh replace fd00:1b:60::fe lladdr 02:00:00:00:00:fe dev lbb0 nud permanent",
        "ip route add 198.19.0.0/16 via 198.18.60.254 dev lbb0",
        "ip route add 10.0.0.0/8 via 198.18.60.254 dev lbb0",
        "ip -6 route add fd00:1b:61::/64 via fd00:1b:60::fe dev lbb0",
    };
    for (const char* c : cmds)
        if (auto err = sh(c); !err.empty())
            return err;
    for (const char* s : {"net.ipv4.conf.all.forwarding", "net.ipv4.conf.lbb0.forwarding",
                          "net.ipv6.conf.all.forwarding", "net.ipv6.conf.lbb0.forwarding"})
        if (auto err = write_sysctl(s, "1"); !err.empty())
            return err;
    return {};
}

}  // namespace lbb
