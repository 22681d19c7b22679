// Runs a BgpSpeaker and a MaintenanceWatch from a YAML file, for the
// integration tests:
//
//   bgp:            the bgp section as lbd reads it
//     ...
//   vips:
//     - name: web
//       address: 198.18.1.100
//       healthy: 1          # healthy backends to start with
//       bgp: { med: 50 }    # optional per-VIP overrides
//
// Commands on stdin, one per line: "healthy NAME COUNT", "status", "quit".
// SIGTERM, SIGINT and "quit" withdraw everything, stop ExaBGP and exit 0. A
// bad file prints every error (FILE:LINE: KEY: MESSAGE) and exits 2 before
// anything starts.
//
// usage: bgp_driver CONFIG [--relay PATH] [--runtime-dir DIR]
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/streambuf.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bgp/bgp_config.h"
#include "bgp/maintenance_watch.h"
#include "bgp/supervisor.h"
#include "lbd/core/yaml_reader.h"

namespace asio = boost::asio;
using namespace lbd;
using namespace lbd::bgp;

namespace {

struct DriverConfig {
    BgpConfig bgp;
    std::vector<VipInput> vips;
};

class Loader : public YamlReader {
public:
    DriverConfig out;

    void load(const YAML::Node& root)
    {
        lines_.emplace("", line_of(root));
        auto f = fields(root, "", {"bgp", "vips"});
        if (!f)
            return;
        if (auto n = require(*f, "", "bgp"))
            read_bgp(*this, *n, "bgp", out.bgp);
        if (auto n = find(*f, "vips"); n && n->IsSequence())
            for (size_t i = 0; i < n->size(); ++i)
                vip((*n)[i], at("vips", i));
        else if (n && !n->IsNull())
            error("vips", "must be a list");
        std::vector<VipRoute> routes;
        for (const auto& v : out.vips)
            routes.push_back({v.name, v.address, v.bgp});
        validate_bgp(*this, out.bgp, "bgp", routes);
    }

private:
    void vip(const YAML::Node& node, const std::string& path)
    {
        auto& v = out.vips.emplace_back();
        note_line(path, line_of(node));
        auto f = fields(node, path, {"name", "address", "healthy", "bgp"});
        if (!f)
            return;
        if (auto n = require(*f, path, "name"))
            v.name = text(*n, path + ".name", "a name").value_or("");
        if (auto n = require(*f, path, "address"))
            v.address = address(*n, path + ".address").value_or(IpAddr{});
        if (auto n = find(*f, "healthy"))
            integer(*n, path + ".healthy", Range{0, 1000000}, v.healthy);
        if (auto n = find(*f, "bgp"))
            read_vip_bgp(*this, *n, path + ".bgp", v.bgp);
    }
};

void say(const std::string& s)
{
    std::fputs((s + "\n").c_str(), stdout);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv)
{
    std::string file, runtime_dir;
    std::string relay = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "bgp_relay").string();
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--relay" && i + 1 < argc)
            relay = argv[++i];
        else if (a == "--runtime-dir" && i + 1 < argc)
            runtime_dir = argv[++i];
        else if (file.empty() && !a.starts_with("-"))
            file = a;
        else {
            std::fprintf(stderr, "usage: bgp_driver CONFIG [--relay PATH] [--runtime-dir DIR]\n");
            return 2;
        }
    }
    if (file.empty()) {
        std::fprintf(stderr, "usage: bgp_driver CONFIG [--relay PATH] [--runtime-dir DIR]\n");
        return 2;
    }
    spdlog::set_pattern("%H:%M:%S.%e %l %v");

    Loader loader;
    try {
        std::ifstream in(file);
        if (!in) {
            std::fprintf(stderr, "%s: cannot open\n", file.c_str());
            return 2;
        }
        std::stringstream text;
        text << in.rdbuf();
        loader.load(YAML::Load(text.str()));
    } catch (const YAML::Exception& e) {
        std::fprintf(stderr, "%s:%d: %s\n", file.c_str(), e.mark.line + 1, e.msg.c_str());
        return 2;
    }
    if (!loader.errors.empty()) {
        for (const auto& e : loader.errors)
            std::fprintf(stderr, "%s\n", e.str(file).c_str());
        return 2;
    }
    auto cfg = loader.out;

    asio::io_context io;
    SpeakerOptions opts;
    opts.relay = {relay};
    opts.runtime_dir = runtime_dir;
    BgpSpeaker speaker(io, cfg.bgp, opts);
    PolicyInputs inputs;
    inputs.vips = cfg.vips;
    MaintenanceWatch watch(io, cfg.bgp.maintenance_file, [&](bool present) {
        say(std::string("maintenance ") + (present ? "on" : "off"));
        speaker.set_maintenance(present);
    });
    inputs.maintenance = watch.present();
    speaker.update(inputs);
    try {
        speaker.start();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bgp_driver: %s\n", e.what());
        return 1;
    }
    say("started");

    bool stopping = false;
    auto stop = [&] {
        if (stopping)
            return;
        stopping = true;
        say("stopping");
        speaker.stop([&] {
            say("stopped");
            io.stop();
        });
    };
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec)
            stop();
    });

    // Commands on stdin (a pipe, FIFO or terminal; anything else is ignored).
    asio::posix::stream_descriptor input(io);
    asio::streambuf buf;
    std::function<void()> read_command = [&] {
        asio::async_read_until(input, buf, '\n', [&](boost::system::error_code ec, size_t n) {
            if (ec)
                return;
            std::string line(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + static_cast<long>(n));
            buf.consume(n);
            std::istringstream words(line);
            std::string cmd, name;
            words >> cmd;
            if (cmd == "healthy") {
                long count = -1;
                words >> name >> count;
                bool found = false;
                for (auto& v : inputs.vips)
                    if (v.name == name && count >= 0) {
                        v.healthy = static_cast<uint32_t>(count);
                        found = true;
                    }
                if (found) {
                    speaker.update(inputs);
                    say("ok healthy " + name + " " + std::to_string(count));
                } else {
                    say("error: usage: healthy NAME COUNT (known VIP)");
                }
            } else if (cmd == "status") {
                std::fputs(format_status(speaker.status(), Clock::now()).c_str(), stdout);
                say("end");
            } else if (cmd == "quit") {
                stop();
            } else if (!cmd.empty()) {
                say("error: unknown command " + cmd);
            }
            read_command();
        });
    };
    boost::system::error_code ec;
    int in_fd = ::dup(STDIN_FILENO);
    input.assign(in_fd, ec);  // fails for a regular file or /dev/null: no commands then
    if (!ec)
        read_command();
    else if (in_fd >= 0)
        ::close(in_fd);

    io.run();
    return 0;
}
