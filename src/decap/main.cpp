// lbd-decap: attach, detach and inspect the XDP decapsulation program
// (bpf/decap.bpf.c) on a backend's interface.
//
// The program is attached through netlink, so it stays after this command
// exits. `status` finds it again through the interface: attached program id ->
// program fd -> its map ids -> the maps, matched by name. No bpffs pins.

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "decap.skel.h"
#include "lbd_shared.h"

#if __has_include("lbd_version.h")
#include "lbd_version.h"
#else
#define LBD_VERSION "unknown"
#endif

namespace {

// Key of the decap_dsts map (struct decap_dst_key, lbd_shared.h), ordered.
struct DecapDstKey : decap_dst_key {
    bool operator<(const DecapDstKey& o) const { return std::memcmp(this, &o, sizeof(*this)) < 0; }
};
static_assert(sizeof(DecapDstKey) == 20 && sizeof(decap_dst_key) == 20);

constexpr unsigned kNumCounters = DECAP_CNT_MAX;

constexpr std::string_view kProgName = "lbd_decap";  // SEC("xdp") function
constexpr std::string_view kDstsMapName = "decap_dsts";
constexpr std::string_view kStatsMapName = "decap_stats";

constexpr const char* kUsage =
    "Usage:\n"
    "  lbd-decap attach IFACE [--mode native|generic] [--address ADDR]... [--force]\n"
    "  lbd-decap detach IFACE [--force]\n"
    "  lbd-decap status IFACE\n"
    "  lbd-decap --help | --version\n"
    "\n"
    "Decapsulates lbd's IPv4-in-IPv4 and IPv6-in-IPv6 packets (also 6in4 and\n"
    "4in6) in XDP on a backend's interface and passes the inner packet to the\n"
    "kernel. Only tunnel packets whose outer destination is one of the endpoint\n"
    "addresses are touched; all other traffic passes unchanged.\n"
    "\n"
    "Commands:\n"
    "  attach   Load the program and attach it to IFACE (it stays attached after\n"
    "           this command exits). Endpoint addresses: every address on IFACE\n"
    "           at this moment (except IPv6 link-local ones) plus each --address.\n"
    "           Re-running attach replaces an earlier lbd-decap program (counters\n"
    "           start again from zero); run it again after IFACE's addresses\n"
    "           change.\n"
    "  detach   Detach the lbd-decap program from IFACE. Exits 0 if nothing is\n"
    "           attached.\n"
    "  status   Show whether lbd-decap is attached, its program id, mode,\n"
    "           counters and endpoint addresses. Exits 0 if lbd-decap is\n"
    "           attached, 3 if not.\n"
    "\n"
    "Options:\n"
    "  --mode native|generic  XDP in the driver (default) or generic (skb) XDP\n"
    "                         for drivers without native XDP support.\n"
    "  --address ADDR         An extra IPv4 or IPv6 endpoint address (e.g. one on\n"
    "                         lo); may be repeated.\n"
    "  --force                attach: replace another XDP program on IFACE;\n"
    "                         detach: detach it even if it is not lbd-decap.\n"
    "  -h, --help             Show this help.\n"
    "  -V, --version          Show the version.\n"
    "\n"
    "Needs root (CAP_BPF and CAP_NET_ADMIN). Errors exit 1, usage errors 2.\n";

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof(buf), f, ap);
    va_end(ap);
    return buf;
}

// libbpf returns -errno (or sets errno and returns NULL).
std::string errstr(int err)
{
    return std::strerror(err < 0 ? -err : err);
}

// An fd closed on scope exit.
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Fd& operator=(Fd&& o) noexcept
    {
        if (this != &o) {
            reset();
            fd_ = o.fd_;
            o.fd_ = -1;
        }
        return *this;
    }
    ~Fd() { reset(); }
    int get() const { return fd_; }
    void reset()
    {
        if (fd_ >= 0)
            close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

enum class Mode { Native, Generic };

const char* mode_name(Mode m) { return m == Mode::Native ? "native" : "generic"; }
uint32_t mode_flag(Mode m) { return m == Mode::Native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE; }

struct Options {
    std::string command;
    std::string iface;
    Mode mode = Mode::Native;
    bool mode_given = false;
    std::vector<std::string> addresses;
    bool force = false;
};

std::optional<DecapDstKey> parse_address(const std::string& text)
{
    DecapDstKey k{};
    in_addr a4{};
    in6_addr a6{};
    if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
        k.addr.w[0] = a4.s_addr;
        k.family = LBD_AF_INET;
        return k;
    }
    if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
        std::memcpy(k.addr.w, &a6, sizeof(a6));
        k.family = LBD_AF_INET6;
        return k;
    }
    return std::nullopt;
}

std::string key_str(const DecapDstKey& k)
{
    char buf[INET6_ADDRSTRLEN] = "?";
    if (k.family == LBD_AF_INET)
        inet_ntop(AF_INET, &k.addr.w[0], buf, sizeof(buf));
    else if (k.family == LBD_AF_INET6)
        inet_ntop(AF_INET6, k.addr.w, buf, sizeof(buf));
    return buf;
}

Options parse_args(int argc, char** argv)
{
    Options o;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&](const std::string& name) -> std::string {
            if (a.size() > name.size() && a.compare(0, name.size() + 1, name + "=") == 0)
                return a.substr(name.size() + 1);
            if (i + 1 >= argc)
                throw UsageError(name + " needs a value");
            return argv[++i];
        };
        auto is = [&](const std::string& name) {
            return a == name || a.compare(0, name.size() + 1, name + "=") == 0;
        };
        if (a == "-h" || a == "--help") {
            o.command = "help";
            return o;
        } else if (a == "-V" || a == "--version") {
            o.command = "version";
            return o;
        } else if (is("--mode")) {
            std::string m = value("--mode");
            if (m == "native")
                o.mode = Mode::Native;
            else if (m == "generic")
                o.mode = Mode::Generic;
            else
                throw UsageError("--mode must be native or generic, not '" + m + "'");
            o.mode_given = true;
        } else if (is("--address")) {
            o.addresses.push_back(value("--address"));
        } else if (a == "--force") {
            o.force = true;
        } else if (a.size() > 1 && a[0] == '-') {
            throw UsageError("unknown option '" + a + "'");
        } else {
            positional.push_back(a);
        }
    }
    if (positional.empty())
        throw UsageError("missing command (attach, detach or status)");
    o.command = positional[0];
    if (o.command != "attach" && o.command != "detach" && o.command != "status")
        throw UsageError("unknown command '" + o.command + "'");
    if (positional.size() < 2)
        throw UsageError(o.command + " needs an interface name");
    if (positional.size() > 2)
        throw UsageError("unexpected argument '" + positional[2] + "'");
    o.iface = positional[1];
    if (o.command != "attach" && (o.mode_given || !o.addresses.empty()))
        throw UsageError("--mode and --address only apply to attach");
    if (o.command == "status" && o.force)
        throw UsageError("--force does not apply to status");
    return o;
}

// Every address configured on iface (IPv4 labels like "eth0:1" included),
// except IPv6 link-local ones: lbd never sends to those, and whether one is
// there yet depends on timing (DAD) right after the link comes up.
std::vector<DecapDstKey> iface_addresses(const std::string& iface)
{
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0)
        throw Error(fmt("getifaddrs: %s", std::strerror(errno)));
    std::vector<DecapDstKey> out;
    for (ifaddrs* ifa = list; ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr || !ifa->ifa_name)
            continue;
        std::string_view name = ifa->ifa_name;
        if (name != iface && !(name.size() > iface.size() && name.substr(0, iface.size()) == iface &&
                               name[iface.size()] == ':'))
            continue;
        DecapDstKey k{};
        if (ifa->ifa_addr->sa_family == AF_INET) {
            auto* sin = reinterpret_cast<sockaddr_in*>(ifa->ifa_addr);
            k.addr.w[0] = sin->sin_addr.s_addr;
            k.family = LBD_AF_INET;
        } else if (ifa->ifa_addr->sa_family == AF_INET6) {
            auto* sin6 = reinterpret_cast<sockaddr_in6*>(ifa->ifa_addr);
            if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr))
                continue;
            std::memcpy(k.addr.w, &sin6->sin6_addr, sizeof(sin6->sin6_addr));
            k.family = LBD_AF_INET6;
        } else {
            continue;
        }
        out.push_back(k);
    }
    freeifaddrs(list);
    return out;
}

// One XDP program found attached to an interface.
struct Attached {
    uint32_t id = 0;
    Mode mode = Mode::Native;
    std::string name;
    Fd fd;
    std::vector<uint32_t> map_ids;
    bool ours() const { return name == kProgName; }
};

Attached describe_prog(uint32_t id, Mode mode)
{
    Attached a;
    a.id = id;
    a.mode = mode;
    a.fd = Fd(bpf_prog_get_fd_by_id(id));
    if (a.fd.get() < 0)
        throw Error(fmt("cannot open XDP program id %u: %s", id, std::strerror(errno)));
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (int err = bpf_obj_get_info_by_fd(a.fd.get(), &info, &len); err)
        throw Error(fmt("cannot read info of program id %u: %s", id, errstr(err).c_str()));
    a.name = info.name;
    uint32_t nr = info.nr_map_ids;
    if (nr > 0) {
        a.map_ids.resize(nr);
        info = bpf_prog_info{};
        info.nr_map_ids = nr;
        info.map_ids = reinterpret_cast<uint64_t>(a.map_ids.data());
        len = sizeof(info);
        if (int err = bpf_obj_get_info_by_fd(a.fd.get(), &info, &len); err)
            throw Error(fmt("cannot read map ids of program id %u: %s", id, errstr(err).c_str()));
        a.map_ids.resize(std::min(nr, info.nr_map_ids));
    }
    return a;
}

// The native (driver) and generic (skb) XDP programs on ifindex.
std::vector<Attached> query_attached(int ifindex, const std::string& iface)
{
    bpf_xdp_query_opts q{};
    q.sz = sizeof(q);
    if (int err = bpf_xdp_query(ifindex, 0, &q); err)
        throw Error(fmt("cannot query XDP programs on %s: %s", iface.c_str(), errstr(err).c_str()));
    std::vector<Attached> out;
    if (q.drv_prog_id)
        out.push_back(describe_prog(q.drv_prog_id, Mode::Native));
    if (q.skb_prog_id)
        out.push_back(describe_prog(q.skb_prog_id, Mode::Generic));
    return out;
}

std::string describe(const Attached& a)
{
    return fmt("'%s' (prog id %u, %s mode)", a.name.c_str(), a.id, mode_name(a.mode));
}

void detach_one(int ifindex, const Attached& a, const std::string& iface)
{
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = a.fd.get());
    int err = bpf_xdp_detach(ifindex, mode_flag(a.mode) | XDP_FLAGS_REPLACE, &opts);
    if (err)
        throw Error(fmt("cannot detach %s from %s: %s", describe(a).c_str(), iface.c_str(),
                        errstr(err).c_str()));
}

uint32_t prog_id_of_fd(int fd)
{
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len))
        return 0;
    return info.id;
}

int cmd_attach(const Options& o, int ifindex)
{
    std::set<DecapDstKey> dsts;
    for (const auto& text : o.addresses) {
        auto k = parse_address(text);
        if (!k)
            throw Error(fmt("bad address '%s': not an IPv4 or IPv6 address", text.c_str()));
        dsts.insert(*k);
    }
    for (const auto& k : iface_addresses(o.iface))
        dsts.insert(k);
    if (dsts.empty())
        throw Error(fmt("%s has no IP address (IPv6 link-local ones do not count) "
                        "and no --address was given",
                        o.iface.c_str()));

    // Decide what to replace before loading anything.
    std::vector<Attached> current = query_attached(ifindex, o.iface);
    const Attached* same_mode = nullptr;
    std::vector<const Attached*> other_mode;
    for (const auto& a : current) {
        if (!a.ours() && !o.force)
            throw Error(fmt("%s already has another XDP program %s; use --force to replace it",
                            o.iface.c_str(), describe(a).c_str()));
        if (a.mode == o.mode)
            same_mode = &a;
        else
            other_mode.push_back(&a);
    }

    decap* skel = decap__open();
    if (!skel)
        throw Error(fmt("cannot open the BPF object: %s", std::strerror(errno)));
    struct SkelGuard {
        decap* s;
        ~SkelGuard() { decap__destroy(s); }
    } guard{skel};

    if (bpf_map__max_entries(skel->maps.decap_dsts) < dsts.size())
        throw Error(fmt("too many endpoint addresses (%zu, at most %u)", dsts.size(),
                        bpf_map__max_entries(skel->maps.decap_dsts)));
    if (bpf_map__key_size(skel->maps.decap_dsts) != sizeof(DecapDstKey))
        throw Error("decap_dsts key size differs from this program's: rebuild lbd-decap");
    if (int err = decap__load(skel); err)
        throw Error(fmt("cannot load the XDP program: %s", errstr(err).c_str()));

    int map_fd = bpf_map__fd(skel->maps.decap_dsts);
    for (const auto& k : dsts) {
        uint8_t one = 1;
        if (int err = bpf_map_update_elem(map_fd, &k, &one, BPF_ANY); err)
            throw Error(fmt("cannot add %s to decap_dsts: %s", key_str(k).c_str(), errstr(err).c_str()));
    }

    // A native and a generic program cannot be attached at the same time:
    // remove one in the other mode first.
    std::string replaced;
    for (const auto* a : other_mode) {
        detach_one(ifindex, *a, o.iface);
        replaced += (replaced.empty() ? "" : ", ") + describe(*a);
    }

    int prog_fd = bpf_program__fd(skel->progs.lbd_decap);
    uint32_t flags = mode_flag(o.mode);
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
    if (same_mode) {
        flags |= XDP_FLAGS_REPLACE;
        opts.old_prog_fd = same_mode->fd.get();
        replaced += (replaced.empty() ? "" : ", ") + describe(*same_mode);
    } else {
        flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
    }
    if (int err = bpf_xdp_attach(ifindex, prog_fd, flags, &opts); err) {
        std::string hint;
        if (err == -EOPNOTSUPP && o.mode == Mode::Native)
            hint = " (driver without native XDP? try --mode generic)";
        else if (err == -EEXIST || err == -EBUSY)
            hint = " (another XDP program was attached meanwhile)";
        throw Error(fmt("cannot attach to %s in %s mode: %s%s", o.iface.c_str(), mode_name(o.mode),
                        errstr(err).c_str(), hint.c_str()));
    }

    std::string addrs;
    for (const auto& k : dsts)
        addrs += " " + key_str(k);
    std::printf("attached lbd-decap (prog id %u) to %s in %s mode%s%s; %zu endpoint address%s:%s\n",
                prog_id_of_fd(prog_fd), o.iface.c_str(), mode_name(o.mode),
                replaced.empty() ? "" : ", replacing ", replaced.c_str(), dsts.size(),
                dsts.size() == 1 ? "" : "es", addrs.c_str());
    return 0;
}

int cmd_detach(const Options& o, int ifindex)
{
    std::vector<Attached> current = query_attached(ifindex, o.iface);
    if (current.empty()) {
        std::printf("nothing attached to %s\n", o.iface.c_str());
        return 0;
    }
    for (const auto& a : current)
        if (!a.ours() && !o.force)
            throw Error(fmt("%s has XDP program %s, not lbd-decap; use --force to detach it anyway",
                            o.iface.c_str(), describe(a).c_str()));
    for (const auto& a : current) {
        detach_one(ifindex, a, o.iface);
        std::printf("detached %s%s from %s\n", a.ours() ? "lbd-decap " : "", describe(a).c_str(),
                    o.iface.c_str());
    }
    return 0;
}

// Opens the map of the attached program called `name`, or returns -1.
Fd open_map_by_name(const Attached& a, std::string_view name, bpf_map_info& info)
{
    for (uint32_t id : a.map_ids) {
        Fd fd(bpf_map_get_fd_by_id(id));
        if (fd.get() < 0)
            continue;
        info = bpf_map_info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 && name == info.name)
            return fd;
    }
    return Fd();
}

int cmd_status(const Options& o, int ifindex)
{
    std::vector<Attached> current = query_attached(ifindex, o.iface);
    const Attached* ours = nullptr;
    for (const auto& a : current) {
        if (a.ours())
            ours = &a;
        else
            std::printf("%s: other XDP program %s attached\n", o.iface.c_str(), describe(a).c_str());
    }
    if (!ours) {
        std::printf("%s: lbd-decap not attached\n", o.iface.c_str());
        return 3;
    }
    std::printf("%s: lbd-decap attached, prog id %u, %s mode\n", o.iface.c_str(), ours->id,
                mode_name(ours->mode));

    bpf_map_info info{};
    Fd dsts = open_map_by_name(*ours, kDstsMapName, info);
    if (dsts.get() < 0 || info.key_size != sizeof(DecapDstKey))
        throw Error(fmt("attached program has no usable %s map", std::string(kDstsMapName).c_str()));
    std::set<DecapDstKey> keys;
    DecapDstKey key{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(dsts.get(), prev, &next) == 0) {
        keys.insert(next);
        key = next;
        prev = &key;
    }
    std::printf("  endpoints:");
    for (const auto& k : keys)
        std::printf(" %s", key_str(k).c_str());
    std::printf("%s\n", keys.empty() ? " (none)" : "");

    Fd stats = open_map_by_name(*ours, kStatsMapName, info);
    if (stats.get() < 0 || info.value_size != sizeof(uint64_t))
        throw Error(fmt("attached program has no usable %s map", std::string(kStatsMapName).c_str()));
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        throw Error(fmt("cannot count possible CPUs: %s", errstr(ncpu).c_str()));
    std::vector<uint64_t> percpu(static_cast<size_t>(ncpu));
    for (uint32_t i = 0; i < kNumCounters && i < info.max_entries; i++) {
        uint64_t sum = 0;
        if (bpf_map_lookup_elem(stats.get(), &i, percpu.data()) == 0)
            for (uint64_t v : percpu)
                sum += v;
        std::printf("  %-18s %llu\n", decap_counter_name(i), static_cast<unsigned long long>(sum));
    }
    return 0;
}

int libbpf_print(enum libbpf_print_level level, const char* f, va_list ap)
{
    if (level == LIBBPF_DEBUG || level == LIBBPF_INFO)
        return 0;
    return std::vfprintf(stderr, f, ap);
}

}  // namespace

int main(int argc, char** argv)
{
    Options o;
    try {
        o = parse_args(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "lbd-decap: %s (see lbd-decap --help)\n", e.what());
        return 2;
    }
    if (o.command == "help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (o.command == "version") {
        std::printf("lbd-decap %s\n", LBD_VERSION);
        return 0;
    }

    try {
        if (geteuid() != 0)
            throw Error("must be run as root (needs CAP_BPF and CAP_NET_ADMIN)");
        int ifindex = static_cast<int>(if_nametoindex(o.iface.c_str()));
        if (ifindex == 0)
            throw Error(fmt("unknown interface '%s'", o.iface.c_str()));
        libbpf_set_print(libbpf_print);
        // Not needed with memcg accounting (5.11+), harmless before.
        rlimit rl{RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_MEMLOCK, &rl);

        if (o.command == "attach")
            return cmd_attach(o, ifindex);
        if (o.command == "detach")
            return cmd_detach(o, ifindex);
        return cmd_status(o, ifindex);
    } catch (const Error& e) {
        std::fprintf(stderr, "lbd-decap: error: %s\n", e.what());
        return 1;
    }
}
