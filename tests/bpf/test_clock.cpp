// The program's clock (bpf/clock.h): jiffies scaled by CONFIG_HZ, which
// libbpf reads from the kernel's config; the fallback lbd uses when the
// kernel has no config file (CONFIG_HZ=0: the coarse clock on every packet);
// and an HZ whose tick is not whole nanoseconds. Each must load and verify.
#include <bpf/libbpf.h>

#include "fixture.h"
#include "xdp_lb.skel.h"

using namespace lbt;

namespace {

using Clock = XdpTest;

TEST_F(Clock, ProgramLoadsWithAndWithoutTheKernelsHz)
{
    for (const char* kconfig : {static_cast<const char*>(nullptr), "CONFIG_HZ=0\n", "CONFIG_HZ=300\n"}) {
        SCOPED_TRACE(kconfig ? std::string("kconfig \"") + kconfig + "\"" : "the kernel's config");
        LIBBPF_OPTS(bpf_object_open_opts, opts);
        opts.kconfig = kconfig;
        xdp_lb* skel = xdp_lb__open_opts(&opts);
        ASSERT_NE(skel, nullptr);
        const int rc = xdp_lb__load(skel);
        EXPECT_EQ(rc, 0) << "the verifier refused this clock branch";
        if (rc == 0) {
            const unsigned hz = skel->kconfig->CONFIG_HZ;
            if (!kconfig)
                EXPECT_GT(hz, 0u) << "this kernel has a config: the program should count jiffies";
            else if (std::string(kconfig) == "CONFIG_HZ=0\n")
                EXPECT_EQ(hz, 0u);
            else
                EXPECT_EQ(hz, 300u);
        }
        xdp_lb__destroy(skel);
    }
}

}  // namespace
