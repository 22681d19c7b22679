#include "fixture.h"
#include <linux/bpf.h>
using namespace lbt;
TEST_F(XdpTest, Smoke)
{
    auto in = tcp_syn(kClient4, 40000, kVip4);
    auto r = run(in);
    EXPECT_ACTION(r, XDP_TX);
    auto be = ring_pick("web4", in.flow());
    ASSERT_TRUE(be);
    EXPECT_FRAME(encapsulated(in, *be), r.out);
    auto in6 = tcp_syn(kClient6, 40000, kVip6);
    auto r6 = run(in6);
    EXPECT_ACTION(r6, XDP_TX);
    EXPECT_FRAME(encapsulated(in6, *ring_pick("web6", in6.flow())), r6.out);
}
