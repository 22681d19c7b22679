// lbd: the load balancer daemon. Reads its YAML config, loads and attaches the
// XDP program, programs VIPs, backends and Maglev rings, serves the control
// socket, and runs until SIGTERM or SIGINT. It does not daemonise: systemd
// (Type=notify) or the lab supervises it.
#include <cstdio>
#include <cstring>
#include <optional>
#include <spdlog/spdlog.h>
#include <string>

#include "bgp/relay.h"
#include "lbd/core/config.h"
#include "lbd/daemon.h"
#include "lbd_version.h"

namespace {

const char* const kUsage = R"(usage: lbd --config FILE
       lbd --check-config FILE
       lbd --detach (--config FILE | --pin-path DIR)
       lbd --version | --help

lbd is an XDP layer-4 load balancer. With --config it loads the XDP program,
attaches it to the configured interfaces, programs every VIP's backends and
Maglev ring, serves the control socket (lbctl), and forwards until SIGTERM
or SIGINT.

The XDP program and its maps stay pinned under datapath.pin_path when lbd
exits or crashes, so forwarding goes on; the next lbd adopts them, the
connection table included (a hitless restart). Changes made with lbctl are
saved in control.state_dir and survive restarts. SIGHUP (or `lbctl reload`)
re-reads the config file and applies the difference live; a config with
errors, or one that changes a key needing a restart, is refused and the
running state is kept.

While it runs, lbd also has a TC egress program on its interfaces that
encapsulates the probes of `via: tunnel` health checks (the default is
`via: direct`); it is detached when lbd exits (docs/health.md).

  --config FILE        run with this YAML config (see etc/lbd.yaml)
  --check-config FILE  validate FILE, print every error with its line, exit
                       0 if valid and 2 if not; nothing is loaded or attached
  --detach             remove the XDP attachments and pinned maps of the lbd
                       that uses this config's pin_path (or --pin-path DIR),
                       and the TC filter a crashed lbd left; this drops its
                       connection table. Stop lbd first.
  --pin-path DIR       with --detach: the pin directory, without a config
  --log-level LEVEL    trace, debug, info (default), warn, error
  --version            print the version
  --help               print this help

Exit status: 0 after a clean stop, 1 on a runtime error (nothing is left
half-attached), 2 on a bad command line or config.
)";

std::optional<lbd::Config> load(const std::string& path)
{
    auto res = lbd::load_config_file(path);
    if (auto* errs = std::get_if<std::vector<lbd::ConfigError>>(&res)) {
        for (const auto& e : *errs)
            std::fprintf(stderr, "%s\n", e.str(path).c_str());
        std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), errs->size(),
                     errs->size() == 1 ? "" : "s");
        return std::nullopt;
    }
    return std::get<lbd::Config>(std::move(res));
}

[[noreturn]] void usage_error(const std::string& msg)
{
    std::fprintf(stderr, "lbd: %s\n%s", msg.c_str(), kUsage);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv)
{
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
    std::string config, check, pin_path, level = "info";
    bool detach = false;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= argc)
                usage_error(a + " needs a value");
            out = argv[++i];
        };
        if (a == "--config")
            value(config);
        else if (a == "--check-config")
            value(check);
        else if (a == "--pin-path")
            value(pin_path);
        else if (a == "--log-level")
            value(level);
        else if (a == "--detach")
            detach = true;
        else if (a == "--exabgp-relay") {
            // Internal: the API process lbd's ExaBGP runs (docs/bgp.md).
            if (i + 1 >= argc)
                usage_error("--exabgp-relay needs the socket path");
            return lbd::bgp::run_exabgp_relay(argv[i + 1]);
        }
        else if (a == "--version") {
            std::printf("lbd %s\n", LBD_VERSION);
            return 0;
        } else if (a == "--help" || a == "-h") {
            std::printf("%s", kUsage);
            return 0;
        } else {
            usage_error("unknown argument '" + a + "'");
        }
    }
    const auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off")
        usage_error("unknown log level '" + level + "'");
    spdlog::set_level(lvl);

    if (!check.empty()) {
        auto cfg = load(check);
        if (!cfg)
            return 2;
        std::printf("%s: ok (%zu VIPs)\n", check.c_str(), cfg->vips.size());
        return 0;
    }
    try {
        if (detach) {
            if (pin_path.empty()) {
                if (config.empty())
                    usage_error("--detach needs --config FILE or --pin-path DIR");
                auto cfg = load(config);
                if (!cfg)
                    return 2;
                pin_path = cfg->datapath.pin_path;
            }
            return lbd::detach_datapath(pin_path);
        }
        if (config.empty())
            usage_error("--config FILE is required");
        auto cfg = load(config);
        if (!cfg)
            return 2;
        return lbd::run_daemon(config, std::move(*cfg));
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
}
