#include "fixture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <dirent.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include "lbd_hash.h"

namespace lbt {

// ------------------------------------------------------------------ helpers

lbd::VipConfig make_vip(const std::string& name, const lbd::IpAddr& addr, uint16_t port,
                        lbd::Protocol proto, const std::vector<Be>& backends)
{
    lbd::VipConfig v;
    v.name = name;
    v.address = addr;
    v.port = port;
    v.protocol = proto;
    for (const auto& b : backends) {
        lbd::BackendConfig c;
        c.address = ip(b.addr);
        c.port = port;
        c.weight = b.weight;
        v.backends.push_back(c);
    }
    return v;
}

Packet from_client() { return Packet().eth(kClientMac, kLbMac); }

Packet tcp_syn(const lbd::IpAddr& client, uint16_t cport, const lbd::IpAddr& vip, uint16_t vport)
{
    Packet p = from_client();
    if (client.is_v4())
        p.ipv4(client, vip).ttl(64).df();
    else
        p.ipv6(client, vip).hop_limit(64);
    return p.tcp(cport, vport).syn();
}

Packet tcp_ack(const lbd::IpAddr& client, uint16_t cport, const lbd::IpAddr& vip, uint16_t vport)
{
    Packet p = from_client();
    if (client.is_v4())
        p.ipv4(client, vip).ttl(64).df();
    else
        p.ipv6(client, vip).hop_limit(64);
    return p.tcp(cport, vport).ack().seq(1001).ack_seq(2001).payload(10);
}

const char* xdp_action_name(int action)
{
    switch (action) {
    case XDP_ABORTED: return "XDP_ABORTED";
    case XDP_DROP: return "XDP_DROP";
    case XDP_PASS: return "XDP_PASS";
    case XDP_TX: return "XDP_TX";
    case XDP_REDIRECT: return "XDP_REDIRECT";
    default: return "XDP_<unknown>";
    }
}

::testing::AssertionResult frames_equal(const Bytes& expected, const Bytes& got)
{
    if (expected == got)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "frames differ (expected " << expected.size() << " bytes, got " << got.size()
           << " bytes; * marks a difference)\nexpected:\n"
           << hexdump(expected, got) << "\ngot:\n"
           << hexdump(got, expected);
}

CounterWatch::CounterWatch(const lbd::Datapath& dp) : dp_(dp), before_(dp.counters()) {}

uint64_t CounterWatch::delta(lbd_counter c) const { return dp_.counters()[c] - before_[c]; }

::testing::AssertionResult CounterWatch::verdicts_are(lbd_counter c, uint64_t n) const
{
    const auto now = dp_.counters();
    std::string wrong;
    for (unsigned i = LBD_CNT_TX; i < LBD_CNT_MAX; i++) {
        const bool verdict = i <= LBD_CNT_DROP_FAMILY || i == LBD_CNT_ICMP_TOO_BIG;
        if (!verdict)
            continue;
        const uint64_t d = now[i] - before_[i];
        const uint64_t want = i == unsigned(c) ? n : 0;
        if (d != want)
            wrong += std::string(" ") + lbd_counter_name(i) + "+" + std::to_string(d) +
                     " (want +" + std::to_string(want) + ")";
    }
    if (wrong.empty())
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "verdict counters:" << wrong;
}

// ---------------------------------------------------------------- namespace

namespace {

/// Runs a shell command; returns "" or a description of the failure.
std::string sh(const std::string& cmd)
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

std::string write_sysctl(const std::string& name, const std::string& value)
{
    std::string path = "/proc/sys/" + name;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    std::ofstream f(path);
    f << value << "\n";
    f.close();
    return f ? std::string() : "cannot write " + path;
}

std::string make_netns()
{
    if (unshare(CLONE_NEWNET) != 0)
        return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    const char* cmds[] = {
        "ip link set lo up",
        "ip link add lbt0 address 02:00:00:00:00:01 type veth peer name lbt1 address "
        "02:00:00:00:00:02",
        "ip addr add 198.18.60.1/24 dev lbt0",
        "ip -6 addr add fd00:1b:60::1/64 dev lbt0 nodad",
        "ip link set lbt1 up",
        "ip link set lbt0 up",
        // The next hop toward the backends, with a known MAC.
        "ip neigh replace 198.18.60.254 lladdr 02:00:00:00:00:fe dev lbt0 nud permanent",
        "ip -6 neigh replace fd00:1b:60::fe lladdr 02:00:00:00:00:fe dev lbt0 nud permanent",
        "ip route add 198.18.61.0/24 via 198.18.60.254 dev lbt0",
        "ip -6 route add fd00:1b:61::/64 via fd00:1b:60::fe dev lbt0",
        // Small MTU. bpf_fib_lookup's MTU check honours a route MTU only
        // when it is locked (or, IPv4, with ip_forward_use_pmtu); an
        // unlocked "mtu 1400" is ignored and the device MTU (1500) is used.
        "ip route add 198.18.62.0/24 via 198.18.60.254 dev lbt0 mtu lock 1400",
        "ip -6 route add fd00:1b:62::/64 via fd00:1b:60::fe dev lbt0 mtu lock 1400",
        // Routed, but the next hop has no neighbour entry.
        "ip route add 198.18.63.0/24 via 198.18.60.253 dev lbt0",
        "ip -6 route add fd00:1b:63::/64 via fd00:1b:60::fd dev lbt0",
        "ip route add blackhole 198.18.64.0/24",
        // A backend behind the other interface (redirect, not TX).
        "ip addr add 198.18.65.1/24 dev lbt1",
        "ip neigh replace 198.18.65.10 lladdr 02:00:00:00:00:65 dev lbt1 nud permanent",
        "ip -6 route add blackhole fd00:1b:64::/64",
    };
    for (const char* c : cmds)
        if (auto err = sh(c); !err.empty())
            return err;
    // bpf_fib_lookup needs forwarding on the ingress device.
    for (const char* s : {"net.ipv4.conf.all.forwarding", "net.ipv4.conf.lbt0.forwarding",
                          "net.ipv6.conf.all.forwarding", "net.ipv6.conf.lbt0.forwarding"})
        if (auto err = write_sysctl(s, "1"); !err.empty())
            return err;
    return {};
}

bool ci_mode()
{
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
}

}  // namespace

std::string& XdpTest::setup_error()
{
    static std::string err;
    return err;
}

void XdpTest::SetUpTestSuite()
{
    // Once per process: the namespace is the process's for good.
    static bool done = false;
    if (done || geteuid() != 0)
        return;
    done = true;
    setup_error() = make_netns();
}

// ---------------------------------------------------------------- per test

std::vector<lbd::VipConfig> XdpTest::base_config()
{
    using lbd::Protocol;
    return {
        make_vip("web4", kVip4, 80, Protocol::Tcp, {"198.18.61.10", "198.18.61.11", "198.18.61.12"}),
        make_vip("dns4", kVip4, 53, Protocol::Udp, {"198.18.61.20", "198.18.61.21"}),
        make_vip("web6", kVip6, 80, Protocol::Tcp,
                 {"fd00:1b:61::10", "fd00:1b:61::11", "fd00:1b:61::12"}),
        make_vip("dns6", kVip6, 53, Protocol::Udp, {"fd00:1b:61::20", "fd00:1b:61::21"}),
        make_vip("small4", kSmallVip4, 80, Protocol::Tcp, {"198.18.62.10"}),
        make_vip("small6", kSmallVip6, 80, Protocol::Tcp, {"fd00:1b:62::10"}),
        make_vip("noneigh4", kNoNeighVip4, 80, Protocol::Tcp, {"198.18.63.10"}),
        make_vip("noneigh6", kNoNeighVip6, 80, Protocol::Tcp, {"fd00:1b:63::10"}),
        make_vip("hole4", kHoleVip4, 80, Protocol::Tcp, {"198.18.64.10"}),
        make_vip("hole6", kHoleVip6, 80, Protocol::Tcp, {"fd00:1b:64::10"}),
        make_vip("empty4", kEmptyVip4, 80, Protocol::Tcp, {}),
        make_vip("empty6", kEmptyVip6, 80, Protocol::Tcp, {}),
    };
}

void XdpTest::SetUp()
{
    if (geteuid() != 0) {
        if (ci_mode())
            FAIL() << "the XDP packet tests need root (BPF_PROG_TEST_RUN, network namespaces); "
                      "CI=true, so this is a failure, not a skip";
        GTEST_SKIP() << "the XDP packet tests need root (BPF_PROG_TEST_RUN, network "
                        "namespaces): run bpf_tests as root";
    }
    ASSERT_EQ(setup_error(), "") << "setting up the test network namespace failed";
    ifindex_ = int(if_nametoindex("lbt0"));
    ASSERT_NE(ifindex_, 0) << "lbt0 does not exist in the test namespace";

    lbd::DatapathConfig cfg;
    cfg.interfaces = {"lbt0"};
    cfg.maglev_ring_size = kRingSize;
    cfg.max_vips = kMaxVips;
    cfg.max_backends = kMaxBackends;
    cfg.hash_seed = kSeed;
    // Never lbd's real pin path: these maps are this test's alone.
    cfg.pin_path = pin_path();
    cfg.conntrack_size = 65536;
    try {
        // Not pinned: every test starts from fresh maps and leaves nothing
        // behind in the (shared, host) bpffs.
        dp_ = std::make_unique<lbd::Datapath>(cfg, lbd::Pinning::None);
    } catch (const std::exception& e) {
        FAIL() << "loading the XDP program: " << e.what();
    }
    st_ = std::make_unique<lbd::LbState>(dp_->writer(), kRingSize, kMaxVips, kMaxBackends);

    // The program's maps, by name (Datapath does not hand out the ring).
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    ASSERT_EQ(bpf_obj_get_info_by_fd(dp_->prog_fd(), &info, &len), 0);
    std::vector<uint32_t> ids(info.nr_map_ids);
    info = {};
    info.nr_map_ids = uint32_t(ids.size());
    info.map_ids = reinterpret_cast<uintptr_t>(ids.data());
    len = sizeof info;
    ASSERT_EQ(bpf_obj_get_info_by_fd(dp_->prog_fd(), &info, &len), 0);
    for (uint32_t id : ids) {
        const int fd = bpf_map_get_fd_by_id(id);
        ASSERT_GE(fd, 0);
        bpf_map_info mi{};
        len = sizeof mi;
        ASSERT_EQ(bpf_obj_get_info_by_fd(fd, &mi, &len), 0);
        maps_.emplace_back(mi.name, fd);
    }
    ASSERT_GE(map_fd("ring"), 0);
    ASSERT_GE(map_fd("conntrack"), 0);

    apply_config(base_config());
}

void XdpTest::TearDown()
{
    for (auto& [name, fd] : maps_)
        close(fd);
    maps_.clear();
    st_.reset();
    dp_.reset();
    // Belt and braces: should anything ever get pinned under our private
    // path, it goes with the test.
    if (DIR* d = opendir(pin_path().c_str())) {
        std::vector<std::string> names;
        while (dirent* e = readdir(d))
            if (std::string n = e->d_name; n != "." && n != "..")
                names.push_back(n);
        closedir(d);
        for (const auto& n : names)
            unlink((pin_path() + "/" + n).c_str());
        rmdir(pin_path().c_str());
        ADD_FAILURE() << "the test datapath pinned objects under " << pin_path()
                      << " (removed); it must not pin anything";
    }
}

std::string XdpTest::pin_path()
{
    return "/sys/fs/bpf/lbd-bpf-tests-" + std::to_string(getpid());
}

int XdpTest::map_fd(const std::string& name) const
{
    for (const auto& [n, fd] : maps_)
        if (n == name)
            return fd;
    return -1;
}

RunResult XdpTest::run(const Bytes& frame)
{
    RunResult r;
    r.out.resize(frame.size() + 512);
    xdp_md ctx{};
    ctx.data_end = uint32_t(frame.size());
    ctx.ingress_ifindex = uint32_t(ifindex_);
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = uint32_t(frame.size());
    opts.data_out = r.out.data();
    opts.data_size_out = uint32_t(r.out.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof ctx;
    opts.repeat = 1;
    if (bpf_prog_test_run_opts(dp_->prog_fd(), &opts) != 0)
        throw std::runtime_error(std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno));
    r.action = int(opts.retval);
    r.out.resize(opts.data_size_out);
    return r;
}

void XdpTest::apply_config(std::vector<lbd::VipConfig> cfg)
{
    config_ = std::move(cfg);
    st_->apply(config_);
}

void XdpTest::set_backends(const std::string& vip_name, const std::vector<Be>& backends)
{
    auto it = std::find_if(config_.begin(), config_.end(),
                           [&](const lbd::VipConfig& v) { return v.name == vip_name; });
    if (it == config_.end())
        throw std::logic_error("no VIP " + vip_name);
    *it = make_vip(it->name, it->address, it->port, it->protocol, backends);
    st_->apply(config_);
}

const lbd::VipState& XdpTest::vip(const std::string& name) const { return st_->vips().at(name); }

uint32_t XdpTest::backend_id(const std::string& vip_name, const lbd::IpAddr& addr) const
{
    const auto* b = vip(vip_name).find(addr);
    if (!b)
        throw std::logic_error("VIP " + vip_name + " has no backend " + addr.str());
    return b->id;
}

uint32_t XdpTest::ring_slot_id(uint32_t vip_id, const lbd_flow_key& flow)
{
    std::vector<uint32_t> slots(kRingSize);
    if (bpf_map_lookup_elem(map_fd("ring"), &vip_id, slots.data()) != 0)
        throw std::runtime_error("reading the ring map");
    return slots[lbd_reduce(lbd_flow_hash(&flow, kSeed), kRingSize)];
}

std::optional<lbd::IpAddr> XdpTest::ring_pick(const std::string& vip_name, const lbd_flow_key& flow)
{
    const auto& v = vip(vip_name);
    const uint32_t id = ring_slot_id(v.vip_id, flow);
    for (const auto& b : v.backends)
        if (b.id == id)
            return b.address;
    return std::nullopt;
}

std::optional<lbd_ct_value> XdpTest::conntrack_entry(const lbd_flow_key& flow)
{
    const lbd_ct_entry* e = lbd::ct_find(dp().conntrack(), flow, kSeed);
    if (!e)
        return std::nullopt;
    return e->v;
}

std::vector<uint16_t> XdpTest::ports_in_one_bucket(const lbd::IpAddr& client, const lbd::IpAddr& vip, size_t n,
                                                   uint16_t from)
{
    const auto table = dp().conntrack();
    std::map<uint32_t, std::vector<uint16_t>> by_bucket;
    for (uint32_t port = from; port < 65536; port++) {
        const lbd_flow_key k = tcp_syn(client, uint16_t(port), vip).flow();
        auto& v = by_bucket[lbd_ct_bucket_of(lbd_flow_hash(&k, kSeed), uint32_t(table.size()))];
        v.push_back(uint16_t(port));
        if (v.size() == n)
            return v;
    }
    throw std::runtime_error("no bucket of the connection table gets enough of these flows");
}

Packet XdpTest::encapsulated(const Packet& in, const lbd::IpAddr& backend,
                             std::optional<lbd::IpAddr> outer_src,
                             std::optional<lbd_flow_key> flow) const
{
    Packet out;
    out.eth(kLbMac, kGwMac);
    if (in.is_v4()) {
        out.ipv4(outer_src.value_or(kLbAddr4), backend).ttl(in.ttl_value()).tos(in.tos_value());
        if (in.df_value())
            out.df();
    } else {
        const lbd_flow_key k = flow ? *flow : in.flow();
        out.ipv6(outer_src.value_or(kLbAddr6), backend)
            .hop_limit(in.ttl_value())
            .traffic_class(in.tos_value())
            .flow_label(lbd_flow_hash(&k, kSeed) & 0xfffff);
    }
    return out.inner(in);
}

}  // namespace lbt
