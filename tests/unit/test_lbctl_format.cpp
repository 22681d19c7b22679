#include "lbctl/lbctl_format.h"

#include "lbctl/lbctl_args.h"

#include <cerrno>

#include <gtest/gtest.h>

using namespace lbctl;
using Json = nlohmann::ordered_json;

namespace {

Json web_vip()
{
    return Json::parse(R"({
      "name": "web", "vip": "198.18.1.100:80", "protocol": "tcp", "algorithm": "maglev", "source": "config",
      "packets": 123456, "bytes": 98765432, "new_flows": 420,
      "backends": [
        {"address": "198.18.2.10", "port": 80, "weight": 1, "state": "up", "active_flows": 12,
         "packets": 3456, "bytes": 1234567, "new_flows": 40},
        {"address": "198.18.2.11", "port": 80, "weight": 3, "state": "draining", "active_flows": 0,
         "packets": 7, "bytes": 512, "new_flows": 1}
      ]})");
}

const char* const kWebVipText = R"(name:       web
vip:        198.18.1.100:80
protocol:   tcp
algorithm:  maglev
source:     config
packets:    123456
bytes:      98765432 (94.2 MiB)
new flows:  420
backends:   2 (1 up, 1 draining)

ADDRESS      PORT  WEIGHT  STATE     ACTIVE  PACKETS  BYTES
198.18.2.10  80    1       up        12      3456     1.2 MiB
198.18.2.11  80    3       draining  0       7        512 B
)";

Json req(const char* text)
{
    return Json::parse(text);
}

}  // namespace

TEST(LbctlFormat, Table)
{
    EXPECT_EQ(format_table({{"A", "BB", "C"}, {"long", "x", ""}, {"", "yy", "z"}}),
              "A     BB  C\n"
              "long  x\n"
              "      yy  z\n");
    EXPECT_EQ(format_table({{"ONLY"}}), "ONLY\n");
    EXPECT_EQ(format_table({}), "");
}

TEST(LbctlFormat, Fields)
{
    EXPECT_EQ(format_fields({{"a", "1"}, {"longer", "2"}, {"empty", ""}}),
              "a:       1\n"
              "longer:  2\n"
              "empty:\n");
}

TEST(LbctlFormat, Bytes)
{
    EXPECT_EQ(format_bytes(0), "0 B");
    EXPECT_EQ(format_bytes(1023), "1023 B");
    EXPECT_EQ(format_bytes(1024), "1.0 KiB");
    EXPECT_EQ(format_bytes(1536), "1.5 KiB");
    EXPECT_EQ(format_bytes(1048575), "1.0 MiB");  // never "1024.0 KiB"
    EXPECT_EQ(format_bytes(1048576), "1.0 MiB");
    EXPECT_EQ(format_bytes(98765432), "94.2 MiB");
    EXPECT_EQ(format_bytes(5ull << 30), "5.0 GiB");
    EXPECT_EQ(format_bytes(3ull << 40), "3.0 TiB");
    EXPECT_EQ(format_bytes(UINT64_MAX), "16.0 EiB");
}

TEST(LbctlFormat, Uptime)
{
    EXPECT_EQ(format_uptime(0), "0s");
    EXPECT_EQ(format_uptime(59), "59s");
    EXPECT_EQ(format_uptime(60), "1m");
    EXPECT_EQ(format_uptime(65), "1m 5s");
    EXPECT_EQ(format_uptime(3600), "1h");
    EXPECT_EQ(format_uptime(90061), "1d 1h 1m 1s");
    EXPECT_EQ(format_uptime(93784), "1d 2h 3m 4s");
    EXPECT_EQ(format_uptime(400 * 86400 + 7), "400d 7s");
}

TEST(LbctlFormat, Cell)
{
    const Json j = Json::parse(
        R"({"s": "text", "u": 18446744073709551615, "i": -3, "f": 1.5, "b": true, "n": null, "o": {}, "a": [],
            "nl": "two\nlines\t\u001b[31m"})");
    EXPECT_EQ(cell(j, "s"), "text");
    EXPECT_EQ(cell(j, "u"), "18446744073709551615");
    EXPECT_EQ(cell(j, "i"), "-3");
    EXPECT_EQ(cell(j, "f"), "1.5");
    EXPECT_EQ(cell(j, "b"), "true");
    EXPECT_EQ(cell(j, "n"), "-");
    EXPECT_EQ(cell(j, "o"), "-");
    EXPECT_EQ(cell(j, "a"), "-");
    EXPECT_EQ(cell(j, "missing"), "-");
    EXPECT_EQ(cell(j, "nl"), "two lines ?[31m");  // no line breaks, no escape sequences
    EXPECT_EQ(cell(Json::array(), "s"), "-");
    EXPECT_EQ(cell(Json(), "s"), "-");
}

TEST(LbctlFormat, LbListAsInTheDocs)
{
    const Json r = Json::parse(R"({"ok": true, "vips": [
        {"name": "web", "vip": "198.18.1.100:80", "protocol": "tcp", "algorithm": "maglev", "backends": 2,
         "healthy": 2, "source": "config"},
        {"name": "web6", "vip": "[2001:db8::1]:443", "protocol": "udp", "algorithm": "maglev", "backends": 3,
         "healthy": 0, "source": "config+lbctl"}]})");
    EXPECT_EQ(format_lb_list(r),
              "NAME  VIP                PROTO  ALGORITHM  BACKENDS  HEALTHY  SOURCE\n"
              "web   198.18.1.100:80    tcp    maglev     2         2/2      config\n"
              "web6  [2001:db8::1]:443  udp    maglev     3         0/3      config+lbctl\n");
}

TEST(LbctlFormat, LbListEmptyAndOddShapes)
{
    EXPECT_EQ(format_lb_list(Json::parse(R"({"ok": true, "vips": []})")),
              "NAME  VIP  PROTO  ALGORITHM  BACKENDS  HEALTHY  SOURCE\n");
    EXPECT_EQ(format_lb_list(Json::parse(R"({"ok": true})")),
              "NAME  VIP  PROTO  ALGORITHM  BACKENDS  HEALTHY  SOURCE\n");
    // A list of backends is counted; a healthy given as text is shown as it is.
    EXPECT_EQ(format_lb_list(Json::parse(R"({"ok": true, "vips": [
                  {"name": "a", "backends": [{}, {}], "healthy": 1},
                  {"name": "b", "healthy": "1/1"}]})")),
              "NAME  VIP  PROTO  ALGORITHM  BACKENDS  HEALTHY  SOURCE\n"
              "a     -    -      -          2         1/2      -\n"
              "b     -    -      -          -         1/1      -\n");
}

TEST(LbctlFormat, Vip)
{
    EXPECT_EQ(format_vip(web_vip()), kWebVipText);
}

TEST(LbctlFormat, VipIpv6AndNoBackends)
{
    Json v = web_vip();
    v["vip"] = "[2001:db8::1]:80";
    v["bytes"] = 100;
    v["backends"] = Json::parse(R"([{"address": "2001:db8::10", "port": 80, "weight": 0, "state": "down",
                                     "active_flows": 0, "packets": 0, "bytes": 0, "new_flows": 0},
                                    {"address": "2001:db8::11", "port": 80, "weight": 1, "state": "unknown"}])");
    const std::string text = format_vip(v);
    EXPECT_NE(text.find("vip:        [2001:db8::1]:80\n"), std::string::npos) << text;
    EXPECT_NE(text.find("bytes:      100\n"), std::string::npos) << text;
    EXPECT_NE(text.find("backends:   2 (1 down, 1 unknown)\n"), std::string::npos) << text;
    EXPECT_NE(text.find("2001:db8::10  80    0       down     0       0        0 B\n"), std::string::npos) << text;
    EXPECT_NE(text.find("2001:db8::11  80    1       unknown  -       -        -\n"), std::string::npos) << text;

    v["backends"] = Json::array();
    EXPECT_NE(format_vip(v).find("backends:   0\n\nADDRESS  PORT  WEIGHT  STATE  ACTIVE  PACKETS  BYTES\n"),
              std::string::npos)
        << format_vip(v);
}

TEST(LbctlFormat, VipToleratesAnything)
{
    for (const char* text : {"{}", "null", "[]", "3", R"({"backends": 3})", R"({"backends": [1, null, "x"]})",
                             R"({"bytes": -5, "packets": "many"})"})
        EXPECT_NO_THROW(format_vip(Json::parse(text))) << text;
    EXPECT_NE(format_vip(Json::parse("{}")).find("name:       -\n"), std::string::npos);
}

TEST(LbctlFormat, Status)
{
    // As lbd sends it: keys sorted, uptime in fractional seconds.
    const Json r = Json::parse(R"({"config_file": "/etc/lbd/lbd.yaml", "interfaces": [{"mode": "native",
        "name": "eth0"}, {"mode": "generic", "name": "eth1"}], "ok": true, "pid": 4242, "pin_path": "/sys/fs/bpf/lbd",
        "state_dir": "/var/lib/lbd", "uptime_s": 93784.75, "version": "0.1.0", "vips": 3})");
    EXPECT_EQ(format_status(r),
              "daemon:       lbd 0.1.0, pid 4242\n"
              "uptime:       1d 2h 3m 4s\n"
              "config file:  /etc/lbd/lbd.yaml\n"
              "state dir:    /var/lib/lbd\n"
              "pin path:     /sys/fs/bpf/lbd\n"
              "interfaces:   eth0 (XDP native), eth1 (XDP generic)\n"
              "VIPs:         3\n");
    EXPECT_NE(format_status(Json::parse(R"({"uptime_s": 65})")).find("uptime:       1m 5s\n"), std::string::npos);
    EXPECT_NE(format_status(Json::parse(R"({"uptime_s": 0.2})")).find("uptime:       0s\n"), std::string::npos);
    EXPECT_NE(format_status(Json::parse(R"({"uptime_s": -1.5})")).find("uptime:       -1.5\n"), std::string::npos);
    EXPECT_NE(format_status(Json::parse(R"({"uptime_s": 1e300})")).find("uptime:       1e+300\n"),
              std::string::npos);
    EXPECT_EQ(format_status(Json::parse(R"({"ok": true})")),
              "daemon:       lbd -\n"
              "uptime:       -\n"
              "config file:  -\n"
              "state dir:    -\n"
              "pin path:     -\n"
              "interfaces:   none\n"
              "VIPs:         -\n");
}

TEST(LbctlFormat, Reload)
{
    EXPECT_EQ(format_reload(Json::parse(R"({"ok": true, "changes": []})")), "reloaded: no changes\n");
    EXPECT_EQ(format_reload(Json::parse(R"({"ok": true})")), "reloaded: no changes\n");
    EXPECT_EQ(format_reload(Json::parse(R"({"ok": true, "changes": ["vip web: added", "vip api: removed"]})")),
              "vip web: added\nvip api: removed\n");
}

TEST(LbctlFormat, RenderRefusedIsOneLineOnStderr)
{
    const Output o = render(req(R"({"cmd": "lb.show", "name": "web"})"),
                            Json::parse(R"({"ok": false, "error": "no VIP named 'web'"})"), false);
    EXPECT_EQ(o.exit_code, kExitRefused);
    EXPECT_EQ(o.out, "");
    EXPECT_EQ(o.err, "lbctl: no VIP named 'web'\n");

    const Output multi = render(req(R"({"cmd": "lb.delete", "name": "x"})"),
                                Json::parse(R"({"ok": false, "error": "line one\nline two"})"), false);
    EXPECT_EQ(multi.err, "lbctl: line one line two\n");

    const Output bare = render(req(R"({"cmd": "status"})"), Json::parse(R"({"ok": false})"), false);
    EXPECT_EQ(bare.exit_code, kExitRefused);
    EXPECT_EQ(bare.err, "lbctl: lbd refused the request without saying why\n");
}

TEST(LbctlFormat, RenderReloadErrors)
{
    const Json r = Json::parse(R"({"ok": false, "error": "the config has 2 errors; nothing changed",
                                   "errors": ["lbd.yaml:12: vips[0].port: out of range", "lbd.yaml:20: bad"]})");
    const Output o = render(req(R"({"cmd": "reload"})"), r, false);
    EXPECT_EQ(o.exit_code, kExitRefused);
    EXPECT_EQ(o.out, "");
    EXPECT_EQ(o.err,
              "lbctl: the config has 2 errors; nothing changed\n"
              "  lbd.yaml:12: vips[0].port: out of range\n"
              "  lbd.yaml:20: bad\n");
}

TEST(LbctlFormat, RenderReloadErrorNotRepeated)
{
    // lbd puts the first error in "error" too; a single one is not printed twice.
    const Json one = Json::parse(R"({"ok": false, "error": "reload refused: interfaces changed, which needs a restart",
                                     "errors": ["interfaces changed, which needs a restart"]})");
    EXPECT_EQ(render(req(R"({"cmd": "reload"})"), one, false).err,
              "lbctl: reload refused: interfaces changed, which needs a restart\n");
    const Json two = Json::parse(R"({"ok": false, "error": "reload refused: a", "errors": ["a", "b"]})");
    EXPECT_EQ(render(req(R"({"cmd": "reload"})"), two, false).err, "lbctl: reload refused: a\n  a\n  b\n");
    // With --json the errors are in the JSON on stdout; stderr keeps one line.
    EXPECT_EQ(render(req(R"({"cmd": "reload"})"), two, true).err, "lbctl: reload refused: a\n");
}

TEST(LbctlFormat, RenderJsonKeepsLbdsOrderAndRawNumbers)
{
    const Json r = Json::parse(R"({"ok": true, "vip": {"name": "web", "bytes": 98765432, "backends": []}})");
    const Output o = render(req(R"({"cmd": "lb.show", "name": "web"})"), r, true);
    EXPECT_EQ(o.exit_code, kExitOk);
    EXPECT_EQ(o.err, "");
    EXPECT_EQ(o.out, "{\n  \"ok\": true,\n  \"vip\": {\n    \"name\": \"web\",\n    \"bytes\": 98765432,\n"
                     "    \"backends\": []\n  }\n}\n");
    EXPECT_EQ(Json::parse(o.out), r);

    // Refused: the answer on stdout for scripts, the one line on stderr for people.
    const Json refused = Json::parse(R"({"ok": false, "error": "no VIP named 'web'"})");
    const Output e = render(req(R"({"cmd": "lb.show", "name": "web"})"), refused, true);
    EXPECT_EQ(e.exit_code, kExitRefused);
    EXPECT_EQ(Json::parse(e.out), refused);
    EXPECT_EQ(e.err, "lbctl: no VIP named 'web'\n");
}

TEST(LbctlFormat, RenderEachCommand)
{
    const Json with_vip = {{"ok", true}, {"vip", web_vip()}};
    const auto out = [&](const char* request, const Json& response) {
        const Output o = render(req(request), response, false);
        EXPECT_EQ(o.exit_code, kExitOk) << request;
        EXPECT_EQ(o.err, "") << request;
        return o.out;
    };
    EXPECT_EQ(out(R"({"cmd": "lb.show", "name": "web"})", with_vip), kWebVipText);
    EXPECT_EQ(out(R"({"cmd": "lb.create", "name": "web", "vip": "198.18.1.100:80", "backends": []})", with_vip),
              std::string("created VIP 'web'\n\n") + kWebVipText);
    EXPECT_EQ(out(R"({"cmd": "lb.add-backend", "name": "web", "backend": "198.18.2.12:80:2"})", with_vip),
              std::string("added backend 198.18.2.12:80:2 to 'web'\n\n") + kWebVipText);
    EXPECT_EQ(out(R"({"cmd": "lb.set-weight", "name": "web", "backend": "198.18.2.12", "weight": 0})", with_vip),
              std::string("set the weight of backend 198.18.2.12 in 'web' to 0 (draining: no new flows)\n\n") +
                  kWebVipText);
    EXPECT_EQ(out(R"({"cmd": "lb.set-weight", "name": "web", "backend": "198.18.2.12", "weight": 5})", with_vip),
              std::string("set the weight of backend 198.18.2.12 in 'web' to 5\n\n") + kWebVipText);
    EXPECT_EQ(out(R"({"cmd": "lb.remove-backend", "name": "web", "backend": "198.18.2.10:80", "force": false})",
                  with_vip),
              std::string("removed backend 198.18.2.10:80 from 'web' (flows pinned to it finish)\n\n") + kWebVipText);
    EXPECT_EQ(out(R"({"cmd": "lb.remove-backend", "name": "web", "backend": "198.18.2.10:80", "force": true})",
                  with_vip),
              std::string("removed backend 198.18.2.10:80 from 'web' (its pinned flows re-scheduled to the other "
                          "backends)\n\n") +
                  kWebVipText);
    EXPECT_EQ(out(R"({"cmd": "lb.delete", "name": "web"})", Json{{"ok", true}}), "deleted VIP 'web'\n");
    EXPECT_EQ(out(R"({"cmd": "reload"})", Json::parse(R"({"ok": true, "changes": ["x"]})")), "x\n");
    EXPECT_EQ(out(R"({"cmd": "lb.list"})", Json::parse(R"({"ok": true, "vips": []})")),
              "NAME  VIP  PROTO  ALGORITHM  BACKENDS  HEALTHY  SOURCE\n");
    EXPECT_NE(out(R"({"cmd": "status"})", Json::parse(R"({"ok": true, "version": "1"})")).find("lbd 1"),
              std::string::npos);
    // A mutation whose answer lacks the VIP still says what was done.
    EXPECT_EQ(out(R"({"cmd": "lb.create", "name": "web", "vip": "198.18.1.100:80"})", Json{{"ok", true}}),
              "created VIP 'web'\n");
}

TEST(LbctlFormat, ParseResponse)
{
    std::string why;
    auto ok = parse_response(R"({"ok": true, "vips": []})", why);
    ASSERT_TRUE(ok);
    EXPECT_EQ((*ok)["vips"], Json::array());
    EXPECT_TRUE(parse_response(R"({"ok": false, "error": "x"})", why));
    for (const char* bad : {"", "hello", "{", "[]", "true", "{}", R"({"ok": 1})", R"({"ok": "true"})",
                            R"({"ok": true} trailing)"}) {
        why.clear();
        EXPECT_FALSE(parse_response(bad, why)) << bad;
        EXPECT_FALSE(why.empty()) << bad;
    }
}

TEST(LbctlFormat, ConnectErrorNamesTheSocket)
{
    EXPECT_EQ(connect_error("/run/lbd/lbd.sock", ENOENT),
              "lbctl: cannot connect to /run/lbd/lbd.sock: No such file or directory (is lbd running?)\n");
    EXPECT_EQ(connect_error("/tmp/s", ECONNREFUSED),
              "lbctl: cannot connect to /tmp/s: Connection refused (is lbd running?)\n");
    EXPECT_NE(connect_error("/tmp/s", EACCES).find("Permission denied (run as root or as a member of lbd's control"),
              std::string::npos);
    EXPECT_EQ(connect_error("/tmp/s", EIO), "lbctl: cannot connect to /tmp/s: Input/output error\n");
}
