// control_bench: how long lbd's state engine takes to get a change into the
// real datapath maps, and how much memory a large config costs.
//
//   sudo build/bench/control_bench [--changes N] [--vips N] [--backends-per-vip N]
//
// Everything goes through lbd::LbState on the real libbpf map writer of an
// lbd::Datapath (Pinning::None: loaded, not attached, nothing pinned). A
// change is "in the datapath" when LbState::apply returns: the map writes are
// synchronous bpf() calls.
//
// 1. Reload: a fresh Datapath (max_vips 1024, max_backends 10240, ring 65537:
//    the ring array alone is 1024 * 65537 * 4 bytes = 268 MB of kernel
//    memory) and LbState::apply of 1,000 VIPs x 10 backends; then the same
//    config applied again (no change), then with one backend more (where the
//    time goes: one ring built, one whole ring written). Resident memory (VmRSS) before and after; BPF maps are
//    kernel memory, not RSS, and are reported apart (memlock from fdinfo).
// 2. Changes: a VIP of 100 backends on a fresh Datapath (the default sizes),
//    then 1,000 consecutive changes, alternately adding a new backend (a
//    config with one more) and removing it (one less); p50/p99/max of
//    LbState::apply, wall and CPU time (CPU time does not count the time
//    other processes held the CPU).
//
// Every change is checked in the maps themselves: each ring slot that had to
// move is read back and must hold the backend Maglev gives it; every 100
// changes, at the end, and for every 10th VIP of the reload the whole ring is
// read back (one lookup) and must equal the ring Maglev builds for the
// VIP's backends, and the backends map must hold them. A failed check makes the
// exit status 1. Time never does.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "bench_common.h"
#include "bench_netns.h"
#include "common/addr.h"
#include "common/maglev.h"
#include "lbd/core/lb_state.h"
#include "lbd/kernel/datapath.h"

namespace {

constexpr uint32_t kRingSize = 65537;
int g_failures = 0;

void fail(const std::string& what)
{
    std::printf("CHECK FAILED: %s\n", what.c_str());
    g_failures++;
}

lbd::IpAddr v4(uint32_t host_order)
{
    lbd::IpAddr a;
    a.family = lbd::Family::V4;
    a.bytes[0] = uint8_t(host_order >> 24);
    a.bytes[1] = uint8_t(host_order >> 16);
    a.bytes[2] = uint8_t(host_order >> 8);
    a.bytes[3] = uint8_t(host_order);
    return a;
}

lbd::BackendConfig backend(uint32_t addr_host_order, uint16_t port)
{
    lbd::BackendConfig b;
    b.address = v4(addr_host_order);
    b.port = port;
    b.weight = 1;
    return b;
}

/// VIP i: 198.18.0.0/15 + i, port 80, TCP; backends from 10.0.0.0/8.
lbd::VipConfig make_vip(uint32_t i, uint32_t nbackends, uint32_t first_backend)
{
    lbd::VipConfig v;
    char name[32];
    std::snprintf(name, sizeof name, "vip%04u", i);
    v.name = name;
    v.address = v4((198u << 24 | 18u << 16) + 1 + i);
    v.port = 80;
    v.protocol = lbd::Protocol::Tcp;
    for (uint32_t k = 0; k < nbackends; k++)
        v.backends.push_back(backend((10u << 24) + 1 + first_backend + k, 80));
    return v;
}

/// The maps of a loaded program, by name (the Datapath does not hand out
/// its fds): fds of the program's maps. The caller closes them.
std::map<std::string, int> prog_maps(int prog_fd)
{
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
        throw std::runtime_error("bpf_obj_get_info_by_fd(prog)");
    std::vector<uint32_t> ids(info.nr_map_ids);
    info = {};
    info.nr_map_ids = uint32_t(ids.size());
    info.map_ids = reinterpret_cast<uint64_t>(ids.data());
    len = sizeof info;
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
        throw std::runtime_error("bpf_obj_get_info_by_fd(prog, map ids)");
    std::map<std::string, int> out;
    for (uint32_t id : ids) {
        const int fd = bpf_map_get_fd_by_id(id);
        if (fd < 0)
            continue;
        bpf_map_info mi{};
        uint32_t mlen = sizeof mi;
        if (bpf_obj_get_info_by_fd(fd, &mi, &mlen) == 0)
            out[mi.name] = fd;
        else
            close(fd);
    }
    return out;
}

void close_all(std::map<std::string, int>& fds)
{
    for (auto& [n, fd] : fds)
        close(fd);
    fds.clear();
}

/// Kernel memory charged for a map (fdinfo "memlock").
uint64_t map_memlock(int fd)
{
    std::ifstream f("/proc/self/fdinfo/" + std::to_string(fd));
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("memlock:", 0) == 0)
            return std::stoull(line.substr(8));
    return 0;
}

/// The VIP's ring as the map holds it (one value per VIP).
std::vector<uint32_t> read_ring(int ring_fd, uint32_t vip_id)
{
    std::vector<uint32_t> vals(kRingSize);
    if (bpf_map_lookup_elem(ring_fd, &vip_id, vals.data()) != 0)
        throw std::runtime_error(std::string("reading the ring map: ") + std::strerror(errno));
    return vals;
}

/// The ring Maglev builds for the VIP's backends as LbState holds them.
std::vector<uint32_t> expected_ring(const lbd::VipState& v)
{
    std::vector<lbd::maglev::Backend> in;
    for (const auto& b : v.backends)
        in.push_back({lbd::Endpoint{b.address, b.port}.str(), b.up ? b.weight : 0, b.id});
    return lbd::maglev::build_ring(in, kRingSize);
}

bool check_vip(const lbd::LbState& st, const std::map<std::string, int>& fds, const std::string& name,
               const std::string& what)
{
    const auto& v = st.vips().at(name);
    if (read_ring(fds.at("ring"), v.vip_id) != expected_ring(v)) {
        fail(what + ": the ring map of " + name + " is not the ring of its backends");
        return false;
    }
    for (const auto& b : v.backends) {
        lbd_backend be{};
        if (bpf_map_lookup_elem(fds.at("backends"), &b.id, &be) != 0 || !(be.flags & LBD_BE_F_VALID) ||
            be.gen != b.gen) {
            fail(what + ": backends[" + std::to_string(b.id) + "] is not " + b.address.str());
            return false;
        }
    }
    return true;
}

std::string mib(double bytes) { return lbb::fmt("%.1f MiB", bytes / (1024.0 * 1024.0)); }

}  // namespace

// ------------------------------------------------------------ 3. through lbd

/// One connection to lbd's control socket: a JSON line out, a JSON line in.
class ControlClient {
public:
    explicit ControlClient(const std::string& path)
    {
        fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
        if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            const int err = errno;
            if (fd_ >= 0)
                close(fd_);
            throw std::runtime_error("connecting to " + path + ": " + std::strerror(err));
        }
    }
    ~ControlClient() { close(fd_); }
    nlohmann::json call(const nlohmann::json& req)
    {
        const std::string line = req.dump() + "\n";
        for (size_t done = 0; done < line.size();) {
            const ssize_t n = write(fd_, line.data() + done, line.size() - done);
            if (n <= 0)
                throw std::runtime_error("writing to the control socket");
            done += size_t(n);
        }
        size_t nl;
        while ((nl = buf_.find('\n')) == std::string::npos) {
            char b[65536];
            const ssize_t n = read(fd_, b, sizeof b);
            if (n <= 0)
                throw std::runtime_error("lbd closed the control connection");
            buf_.append(b, size_t(n));
        }
        auto out = nlohmann::json::parse(buf_.substr(0, nl));
        buf_.erase(0, nl + 1);
        return out;
    }

private:
    int fd_ = -1;
    std::string buf_;
};

std::string config_yaml(const std::string& pin, const std::string& dir, uint32_t max_vips,
                        uint32_t max_backends, const std::string& vips_yaml)
{
    return "datapath:\n  interfaces: [" + std::string(lbb::kDev) + "]\n  xdp_mode: native\n" +
           "  conntrack_size: 65536\n  max_vips: " + std::to_string(max_vips) +
           "\n  max_backends: " + std::to_string(max_backends) + "\n  pin_path: " + pin +
           "\ncontrol:\n  socket: " + dir + "/lbd.sock\n  state_dir: " + dir + "/state\n" + vips_yaml;
}

/// VIPs of 198.18.64.0/18 (port 80), backends of 198.19.0.0/16 (routed on lbb0).
std::string vips_yaml(uint32_t nvips, uint32_t per_vip)
{
    std::string y = "vips:\n";
    for (uint32_t i = 0; i < nvips; i++) {
        char head[160];
        std::snprintf(head, sizeof head, "  - name: vip%04u\n    address: 198.18.%u.%u\n    port: 80\n    backends:\n",
                      i, 64 + i / 250, 1 + i % 250);
        y += head;
        for (uint32_t k = 0; k < per_vip; k++) {
            const uint32_t n = i * per_vip + k;
            y += "      - {address: 198.19." + std::to_string(n / 250) + "." + std::to_string(1 + n % 250) + "}\n";
        }
    }
    return y;
}

/// Backend ids the VIP's ring names, read from lbd's pinned maps.
std::set<uint32_t> ring_ids(const std::string& pin, uint32_t vip_id)
{
    const int fd = bpf_obj_get((pin + "/ring").c_str());
    if (fd < 0)
        throw std::runtime_error("opening the pinned ring map under " + pin);
    std::vector<uint32_t> ring(kRingSize);
    const int rc = bpf_map_lookup_elem(fd, &vip_id, ring.data());
    close(fd);
    if (rc != 0)
        throw std::runtime_error("reading the pinned ring map");
    return {ring.begin(), ring.end()};
}

/// Part 3: the real lbd in a private network namespace (veth lbb0, native
/// XDP), driven over its control socket as lbctl drives it. Returns false if
/// a check failed.
bool through_lbd(const std::string& lbd_bin, int changes, uint32_t nvips, uint32_t per_vip)
{
    if (auto err = lbb::make_bench_netns(); !err.empty())
        throw std::runtime_error("network namespace: " + err);
    char tmpl[] = "/tmp/control_bench.XXXXXX";
    if (!mkdtemp(tmpl))
        throw std::runtime_error("mkdtemp");
    const std::string dir = tmpl;
    const std::string pin = "/sys/fs/bpf/lbd-control-bench-" + std::to_string(getpid());
    const std::string cfg = dir + "/lbd.yaml";
    const uint32_t max_vips = nvips + 24, max_backends = nvips * per_vip + 240;
    auto write_cfg = [&](const std::string& vips) {
        std::ofstream(cfg) << config_yaml(pin, dir, max_vips, max_backends, vips);
    };
    // Start: one VIP of 100 backends.
    write_cfg("vips:\n  - name: echo\n    address: 198.18.63.1\n    port: 7000\n    backends:\n" + [] {
        std::string b;
        for (int k = 0; k < 100; k++)
            b += "      - {address: 198.19.200." + std::to_string(1 + k) + "}\n";
        return b;
    }());
    const pid_t pid = fork();
    if (pid == 0) {
        const int log = open((dir + "/lbd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(log, 1);
        dup2(log, 2);
        execl(lbd_bin.c_str(), lbd_bin.c_str(), "--config", cfg.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    bool ok = true;
    auto stop_lbd = [&] {
        kill(pid, SIGTERM);
        int st = 0;
        waitpid(pid, &st, 0);
        const std::string out =
            lbb::sh("'" + lbd_bin + "' --detach --config '" + cfg + "' >/dev/null && rm -rf '" + dir + "'");
        if (!out.empty()) {
            fail("cleaning up: " + out);
            ok = false;
        }
    };
    try {
        std::unique_ptr<ControlClient> c;
        for (int i = 0; i < 300 && !c; i++) {
            try {
                c = std::make_unique<ControlClient>(dir + "/lbd.sock");
                if (!c->call({{"cmd", "status"}}).value("ok", false))
                    c.reset();
            } catch (const std::exception&) {
                if (waitpid(pid, nullptr, WNOHANG) == pid)
                    throw std::runtime_error("lbd exited at start; see its log");
                usleep(50000);
            }
        }
        if (!c)
            throw std::runtime_error("lbd did not answer on its control socket within 15 s");

        // 3a. add-backend / remove-backend requests, each checked in the
        // pinned ring map once lbd has answered.
        std::printf("== 3a. %d lb.add-backend / lb.remove-backend requests to the real lbd (control socket, "
                    "VIP of 100 backends) ==\n", changes);
        uint32_t vip_id = 0;
        {
            const int fd = bpf_obj_get((pin + "/vips").c_str());
            lbd_vip_key k{}, next{};
            lbd_vip_meta m{};
            if (fd < 0 || bpf_map_get_next_key(fd, nullptr, &next) != 0 || bpf_map_lookup_elem(fd, &next, &m) != 0)
                throw std::runtime_error("reading the pinned vips map");
            (void)k;
            vip_id = m.vip_id;
            close(fd);
        }
        std::vector<double> all;
        int bad = 0;
        for (int i = 0; i < changes; i++) {
            const bool add = i % 2 == 0;
            const std::string be = "198.19.201." + std::to_string(1 + (i / 2) % 250) + ":7000";
            nlohmann::json req = {{"cmd", add ? "lb.add-backend" : "lb.remove-backend"}, {"name", "echo"},
                                  {"backend", be}};
            if (!add)
                req["force"] = false;
            lbb::Stopwatch w;
            const auto r = c->call(req);
            all.push_back(w.wall_ms());
            if (!r.value("ok", false)) {
                fail("request " + std::to_string(i) + ": " + r.dump());
                bad++;
                break;
            }
            const size_t want = add ? 101 : 100;
            if (const auto ids = ring_ids(pin, vip_id); ids.size() != want) {
                fail("request " + std::to_string(i) + ": the ring names " + std::to_string(ids.size()) +
                     " backends, not " + std::to_string(want));
                bad++;
                break;
            }
        }
        ok &= bad == 0;
        lbb::Table t({"request to lbd, answer received", "requests", "p50 ms", "p99 ms", "max ms", "target"});
        t.add({"add-backend or remove-backend", std::to_string(all.size()), lbb::fmt("%.2f", lbb::quantile(all, 0.5)),
               lbb::fmt("%.2f", lbb::quantile(all, 0.99)), lbb::fmt("%.2f", lbb::quantile(all, 1.0)), "p99 < 10 ms"});
        t.print();
        std::printf("  Round trip over the Unix socket: parse, apply to the maps, save state.json (write, fsync, rename),\n"
                    "  answer. After each answer the ring map (pinned) is read: it names %s backends.\n\n",
                    bad ? "NOT the expected" : "exactly the expected");

        // 3b. Reload of a large config.
        std::printf("== 3b. lbd reload: %u VIPs x %u backends (ring %u) ==\n", nvips, per_vip, kRingSize);
        const long rss_before = lbb::proc_status_kib("VmRSS", std::to_string(pid));
        write_cfg(vips_yaml(nvips, per_vip));
        lbb::Stopwatch w;
        const auto r = c->call({{"cmd", "reload"}});
        const double ms = w.wall_ms();
        const long rss_after = lbb::proc_status_kib("VmRSS", std::to_string(pid));
        const long hwm = lbb::proc_status_kib("VmHWM", std::to_string(pid));
        if (!r.value("ok", false)) {
            fail("reload: " + r.dump().substr(0, 400));
            ok = false;
        }
        const auto listed = c->call({{"cmd", "lb.list"}});
        const size_t n = listed.value("vips", nlohmann::json::array()).size();
        // The config's VIPs, and "echo": 3a's requests made it a live change,
        // which stays on top of the config (docs/operations.md).
        if (n != nvips + 1) {
            fail("after the reload lbd lists " + std::to_string(n) + " VIPs, not " + std::to_string(nvips + 1));
            ok = false;
        }
        lbb::Table t3({"what", "value", "target"});
        t3.add({"reload request to answer (parse, validate, apply, save)", lbb::fmt("%.0f ms", ms), "< 1000 ms"});
        t3.add({"lbd VmRSS before (1 VIP)", mib(double(rss_before) * 1024), "-"});
        t3.add({"lbd VmRSS after the reload", mib(double(rss_after) * 1024), "< 64 MiB"});
        t3.add({"lbd VmHWM (peak RSS)", mib(double(hwm) * 1024), "-"});
        t3.add({"VIPs lbd lists afterwards (with 3a's echo)", std::to_string(n), std::to_string(nvips + 1)});
        t3.print();
        {
            std::ifstream log(dir + "/lbd.log");
            std::string line, applied;
            while (std::getline(log, line))
                if (line.find("reload applied") != std::string::npos)
                    applied = line;
            std::printf("  lbd's log: %s\n", applied.empty() ? "(no 'reload applied' line)" : applied.c_str());
        }
        std::printf("  %s at the end of part 3\n\n", lbb::load_line().c_str());
    } catch (...) {
        stop_lbd();
        throw;
    }
    stop_lbd();
    return ok;
}

int main(int argc, char** argv)
{
    int changes = 1000;
    uint32_t nvips = 1000, per_vip = 10;
    bool with_lbd = true;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a == "--changes" && i + 1 < argc)
            changes = std::stoi(argv[++i]);
        else if (a == "--vips" && i + 1 < argc)
            nvips = uint32_t(std::stoul(argv[++i]));
        else if (a == "--backends-per-vip" && i + 1 < argc)
            per_vip = uint32_t(std::stoul(argv[++i]));
        else if (a == "--no-lbd")
            with_lbd = false;
        else {
            std::printf("usage: control_bench [--changes N] [--vips N] [--backends-per-vip N] [--no-lbd]\n"
                        "  --no-lbd  skip part 3 (the real lbd over its control socket)\n");
            return a == "-h" || a == "--help" ? 0 : 2;
        }
    }
    if (!lbb::is_root()) {
        std::printf("control_bench: skipped: needs root (loads the XDP program and its maps)\n");
        return lbb::kSkip;
    }
    try {
        const uint64_t t_start = lbb::now_ns();
        std::printf("control_bench: %s\n%s at start\n\n", lbb::machine_line().c_str(),
                    lbb::load_line().c_str());

        // ------------------------------------------------------ 1. reload
        std::printf("== 1. Reload: %u VIPs x %u backends, ring %u, on a fresh Datapath ==\n", nvips,
                    per_vip, kRingSize);
        {
            const long rss0 = lbb::proc_status_kib("VmRSS");
            std::vector<lbd::VipConfig> cfg;
            for (uint32_t i = 0; i < nvips; i++)
                cfg.push_back(make_vip(i, per_vip, i * per_vip));
            lbd::DatapathConfig dc;
            dc.max_vips = 1024;
            dc.max_backends = 10240;
            dc.maglev_ring_size = kRingSize;
            dc.pin_path = "/sys/fs/bpf/lbd-control-bench-unused";
            const long rss_cfg = lbb::proc_status_kib("VmRSS");
            using Times = std::pair<double, double>;  // wall ms, CPU ms
            auto timed = [](auto&& f) {
                lbb::Stopwatch w;
                f();
                return Times{w.wall_ms(), w.process_cpu_ms()};
            };
            std::unique_ptr<lbd::Datapath> dpp;
            const Times load = timed([&] { dpp = std::make_unique<lbd::Datapath>(dc, lbd::Pinning::None); });
            lbd::Datapath& dp = *dpp;
            const long rss_loaded = lbb::proc_status_kib("VmRSS");
            lbd::LbState st(dp.writer(), kRingSize, dc.max_vips, dc.max_backends);
            const Times apply = timed([&] { st.apply(cfg); });
            const long rss_applied = lbb::proc_status_kib("VmRSS");
            std::vector<std::string> log;
            const Times reapply = timed([&] { log = st.apply(cfg); });
            if (!log.empty())
                fail("re-applying the same config changed something: " + log.front());
            // One backend more on top of the large config.
            auto more = cfg;
            more[0].backends.push_back(backend((11u << 24) + 1, 80));
            const Times add_one = timed([&] { st.apply(more); });
            // Where the time goes: one ring built (Maglev, 10 backends) and
            // one whole ring written through the map writer (to the ring of
            // an unused VIP id).
            std::vector<double> build_wall, build_cpu, write_wall, write_cpu;
            {
                const auto& v = st.vips().begin()->second;
                std::vector<uint32_t> ring;
                for (int k = 0; k < 10; k++) {
                    const Times x = timed([&] { ring = expected_ring(v); });
                    build_wall.push_back(x.first);
                    build_cpu.push_back(x.second);
                }
                for (int k = 0; k < 5; k++) {
                    const Times x = timed([&] { dp.writer().put_ring(dc.max_vips - 1, ring); });
                    write_wall.push_back(x.first);
                    write_cpu.push_back(x.second);
                }
            }
            auto fds = prog_maps(dp.prog_fd());
            uint64_t memlock = 0;
            for (const auto& [name, fd] : fds)
                memlock += map_memlock(fd);
            // Every 10th VIP's whole ring and backends, read back from the
            // maps (all of them would take as long again as the reload).
            bool ok = true;
            for (size_t i = 0; i < more.size(); i += 10)
                ok &= check_vip(st, fds, more[i].name, "reload");
            const long rss_end = lbb::proc_status_kib("VmRSS");
            close_all(fds);

            auto t2s = [](const Times& x, const char* f = "%.0f") {
                return std::pair{lbb::fmt(f, x.first), lbb::fmt(f, x.second)};
            };
            lbb::Table t1({"what", "wall ms", "CPU ms", "target"});
            auto add_row = [&](const std::string& what, const std::pair<std::string, std::string>& v,
                               const std::string& target) { t1.add({what, v.first, v.second, target}); };
            add_row("load the program, create its maps", t2s(load), "-");
            add_row("LbState::apply, " + std::to_string(nvips) + " VIPs x " + std::to_string(per_vip) +
                        " backends",
                    t2s(apply), "< 1000 ms");
            add_row("LbState::apply again, no change", t2s(reapply), "-");
            add_row("LbState::apply, one backend more (one VIP changed)", t2s(add_one), "-");
            add_row("  one ring built (Maglev, 10 backends; median)",
                    t2s({lbb::median(build_wall), lbb::median(build_cpu)}, "%.2f"), "-");
            add_row("  one whole ring written, 65537 slots (median)",
                    t2s({lbb::median(write_wall), lbb::median(write_cpu)}, "%.2f"), "-");
            t1.print();
            std::printf("  CPU: the process's user + system time, all threads (a reload builds rings on "
                        "one worker per CPU);\n  wall time also counts time other processes held the CPU. "
                        "Load average now: %s\n\n", lbb::load_line().c_str());
            lbb::Table tm({"memory", "value", "target"});
            auto& t1m = tm;
            t1m.add({"VmRSS at start", mib(double(rss0) * 1024), "-"});
            t1m.add({"VmRSS with the config model built", mib(double(rss_cfg) * 1024), "-"});
            t1m.add({"VmRSS after load", mib(double(rss_loaded) * 1024), "-"});
            t1m.add({"VmRSS after apply", mib(double(rss_applied) * 1024), "< 64 MiB"});
            t1m.add({"VmRSS at the end (after the re-applies)", mib(double(rss_end) * 1024), "< 64 MiB"});
            t1m.add({"VmHWM (peak RSS)", mib(double(lbb::proc_status_kib("VmHWM")) * 1024), "-"});
            t1m.add({"BPF maps (fdinfo memlock: kernel memory, not in RSS)", mib(double(memlock)), "-"});
            t1m.add({"every 10th VIP's ring and backends read back from the maps", ok ? "as configured" : "NO",
                     "-"});
            t1m.print();
            std::printf("\n");
        }

        // ----------------------------------------------------- 2. changes
        std::printf("== 2. %d consecutive changes: one backend more / one less, VIP of 100 backends ==\n",
                    changes);
        {
            lbd::DatapathConfig dc;  // default sizes: 256 VIPs, 4096 backends, ring 65537
            dc.maglev_ring_size = kRingSize;
            dc.pin_path = "/sys/fs/bpf/lbd-control-bench-unused";
            lbd::Datapath dp(dc, lbd::Pinning::None);
            lbd::LbState st(dp.writer(), kRingSize, dc.max_vips, dc.max_backends);
            const lbd::VipConfig base = make_vip(0, 100, 0);
            st.apply({base});
            auto fds = prog_maps(dp.prog_fd());
            check_vip(st, fds, base.name, "initial");
            std::vector<uint32_t> prev = expected_ring(st.vips().at(base.name));
            std::vector<double> all, adds, removes, cpu;
            uint64_t moved = 0;
            int bad = 0;
            for (int i = 0; i < changes; i++) {
                const bool add = i % 2 == 0;
                lbd::VipConfig next = base;
                if (add)
                    next.backends.push_back(backend((12u << 24) + 1 + uint32_t(i / 2), 80));
                lbb::Stopwatch w;
                st.apply({next});
                const double d = w.wall_ms();
                cpu.push_back(w.cpu_ms());
                all.push_back(d);
                (add ? adds : removes).push_back(d);
                // In the maps: every slot that had to move (each read
                // back), the whole ring every 100 changes and at the end.
                const auto& v = st.vips().at(base.name);
                const auto want = expected_ring(v);
                const auto got = read_ring(fds.at("ring"), v.vip_id);
                for (uint32_t k = 0; k < kRingSize; k++) {
                    if (want[k] == prev[k])
                        continue;
                    moved++;
                    if (got[k] != want[k]) {
                        fail("change " + std::to_string(i) + ": ring slot " + std::to_string(k) +
                             " holds " + std::to_string(got[k]) + ", not " + std::to_string(want[k]));
                        bad++;
                        break;
                    }
                }
                prev = want;
                if ((i % 100 == 99 || i == changes - 1) &&
                    !check_vip(st, fds, base.name, "change " + std::to_string(i)))
                    bad++;
                if (v.backends.size() != (add ? 101u : 100u)) {
                    fail("change " + std::to_string(i) + ": the VIP has " +
                         std::to_string(v.backends.size()) + " backends");
                    bad++;
                }
            }
            close_all(fds);
            lbb::Table t2({"LbState::apply", "changes", "p50 ms", "p99 ms", "max ms", "checked in the maps"});
            auto row = [&](const std::string& n, const std::vector<double>& v) {
                t2.add({n, std::to_string(v.size()), lbb::fmt("%.2f", lbb::quantile(v, 0.5)),
                        lbb::fmt("%.2f", lbb::quantile(v, 0.99)),
                        lbb::fmt("%.2f", *std::max_element(v.begin(), v.end())),
                        bad ? std::to_string(bad) + " FAILED" : "every change"});
            };
            row("add or remove (wall)", all);
            row("add one backend (wall)", adds);
            row("remove one backend (wall)", removes);
            row("add or remove (CPU time)", cpu);
            t2.print();
            std::printf("  time from the call to its return, the maps written (synchronous bpf() "
                        "calls); the control socket and\n  the config parsing in front of it are not "
                        "included (part 3 has them). Ring slots moved per change: %.0f of %u (each read back).\n\n",
                        changes ? double(moved) / changes : 0.0, kRingSize);
        }
        // ------------------------------------------------------ 3. through lbd
        if (with_lbd) {
            char exe[4096];
            const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
            const std::string self = n > 0 ? std::string(exe, size_t(n)) : std::string();
            const std::string lbd_bin = self.substr(0, self.rfind('/')) + "/../lbd";
            if (access(lbd_bin.c_str(), X_OK) != 0)
                throw std::runtime_error(lbd_bin + " not found (build the lbd target)");
            through_lbd(lbd_bin, changes, nvips, per_vip);
        }
        std::printf("control_bench: %.1f s, %s at the end\n", double(lbb::now_ns() - t_start) / 1e9,
                    lbb::load_line().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "control_bench: %s\n", e.what());
        return 2;
    }
    return g_failures ? 1 : 0;
}
