// The desired-state engine, through the in-memory MapWriter: what it writes
// for new VIPs, what it writes (and does not) for changes, and how backend
// ids and generations keep pinned flows right.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <set>

#include "common/maglev.h"
#include "lbd/core/lb_state.h"

using namespace lbd;

namespace {

constexpr uint32_t kRing = 1021;

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

VipConfig vip(const std::string& name, const char* addr, uint16_t port,
              std::vector<std::pair<const char*, uint32_t>> backends)
{
    VipConfig v;
    v.name = name;
    v.address = ip(addr);
    v.port = port;
    for (auto [a, w] : backends)
    {
        BackendConfig b;
        b.address = ip(a);
        b.port = port;
        b.weight = w;
        v.backends.push_back(b);
    }
    return v;
}

struct Fixture : ::testing::Test {
    MemMapWriter w{kRing};
    LbState st{w, kRing, 8, 16};

    std::vector<uint32_t> ring_of(const std::string& name)
    {
        const auto& v = st.vips().at(name);
        std::vector<uint32_t> r(kRing);
        for (uint32_t i = 0; i < kRing; i++)
            r[i] = w.ring.at(uint64_t(v.vip_id) * kRing + i);
        return r;
    }
    uint32_t id_of(const std::string& name, const char* addr)
    {
        return st.vips().at(name).find(ip(addr))->id;
    }
};

TEST_F(Fixture, NewVipWritesBackendsFullRingThenVip)
{
    auto log = st.apply({vip("web", "198.18.1.100", 80, {{"198.18.2.10", 1}, {"198.18.2.11", 1}})});
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(w.vips.size(), 1u);
    EXPECT_EQ(w.backends.size(), 2u);
    EXPECT_EQ(w.ring_writes, 1u) << "the whole ring in one write";
    const auto& v = st.vips().at("web");
    const auto key = v.key();
    EXPECT_EQ(key.port, htons(80));
    EXPECT_EQ(key.proto, 6);
    EXPECT_EQ(key.family, LBD_AF_INET);
    for (const auto& b : v.backends) {
        EXPECT_NE(b.id, 0u) << "id 0 is reserved: a zeroed ring slot must name no backend";
        EXPECT_EQ(w.backends.at(b.id).flags, LBD_BE_F_VALID);
        EXPECT_EQ(w.backends.at(b.id).gen, b.gen);
    }
    std::set<uint32_t> owners;
    for (auto id : ring_of("web"))
        owners.insert(id);
    EXPECT_EQ(owners, (std::set<uint32_t>{v.backends[0].id, v.backends[1].id}));
}

TEST(LbStateReload, ManyVipsAtOnceGetTheRingOfTheirOwnBackends)
{
    // More VIPs than one batch of parallel ring builds (16), each with its
    // own backends and weights: every ring must be the one Maglev builds for
    // that VIP, whichever thread built it, and written once.
    constexpr int kVips = 41;
    MemMapWriter w{kRing};
    LbState st{w, kRing, 64, 512};
    std::vector<VipConfig> cfg;
    std::vector<std::string> addrs;
    for (int i = 0; i < kVips; i++)
        for (int b = 0; b < 3; b++)
            addrs.push_back("198.18." + std::to_string(10 + i) + "." + std::to_string(10 + b));
    for (int i = 0; i < kVips; i++) {
        const std::string a = "198.18.1." + std::to_string(i + 1);
        cfg.push_back(vip("v" + std::to_string(i), a.c_str(), 80,
                          {{addrs[3 * i].c_str(), 1}, {addrs[3 * i + 1].c_str(), uint32_t(1 + i % 3)},
                           {addrs[3 * i + 2].c_str(), 2}}));
    }
    const auto log = st.apply(cfg);
    ASSERT_EQ(log.size(), size_t(kVips));
    for (int i = 0; i < kVips; i++)
        EXPECT_EQ(log[i].rfind("vip v" + std::to_string(i) + " added", 0), 0u) << "log in config order: " << log[i];
    EXPECT_EQ(w.ring_writes, size_t(kVips));
    EXPECT_EQ(w.vips.size(), size_t(kVips));
    for (const auto& [name, v] : st.vips()) {
        std::vector<maglev::Backend> in;
        for (const auto& b : v.backends)
            in.push_back({Endpoint{b.address, b.port}.str(), b.weight, b.id});
        const auto want = maglev::build_ring(in, kRing);
        for (uint32_t i = 0; i < kRing; i++)
            ASSERT_EQ(w.ring.at(uint64_t(v.vip_id) * kRing + i), want[i]) << name << " slot " << i;
    }
}

TEST_F(Fixture, ReapplyingTheSameConfigWritesNothing)
{
    auto cfg = std::vector{vip("web", "198.18.1.100", 80, {{"198.18.2.10", 1}, {"198.18.2.11", 1}})};
    st.apply(cfg);
    const auto writes = w.ring_writes;
    const auto backends = w.backends.size();
    EXPECT_TRUE(st.apply(cfg).empty());
    EXPECT_EQ(w.ring_writes, writes);
    EXPECT_EQ(w.backends.size(), backends);
}

TEST_F(Fixture, AddingABackendMovesOnlyTheSlotsItTakes)
{
    st.apply({vip("web", "198.18.1.100", 80, {{"198.18.2.10", 1}, {"198.18.2.11", 1}})});
    const auto before = ring_of("web");
    const auto writes = w.ring_writes;
    auto log = st.apply({vip("web", "198.18.1.100", 80,
                             {{"198.18.2.10", 1}, {"198.18.2.11", 1}, {"198.18.2.12", 1}})});
    ASSERT_EQ(log.size(), 1u);
    EXPECT_NE(log[0].find("198.18.2.12 added"), std::string::npos);
    const auto after = ring_of("web");
    const uint32_t new_id = id_of("web", "198.18.2.12");
    size_t changed = 0, between_old = 0;
    for (uint32_t i = 0; i < kRing; i++) {
        if (before[i] != after[i]) {
            changed++;
            between_old += after[i] != new_id;
        }
    }
    EXPECT_EQ(w.ring_writes - writes, 1u) << "the new ring in one write";
    EXPECT_NEAR(double(changed) / kRing, 1.0 / 3, 0.05);
    // Maglev moves a few slots between the old backends too; keep it small.
    EXPECT_LT(double(between_old) / kRing, 0.05) << between_old << " slots moved between old backends";
}

TEST_F(Fixture, DrainKeepsTheBackendValidButOutOfTheRing)
{
    st.apply({vip("web", "198.18.1.100", 80, {{"198.18.2.10", 1}, {"198.18.2.11", 1}})});
    const uint32_t drained = id_of("web", "198.18.2.10");
    auto log = st.apply({vip("web", "198.18.1.100", 80, {{"198.18.2.10", 0}, {"198.18.2.11", 1}})});
    ASSERT_EQ(log.size(), 1u);
    EXPECT_NE(log[0].find("draining"), std::string::npos);
    for (auto id : ring_of("web"))
        EXPECT_NE(id, drained);
    EXPECT_EQ(w.backends.at(drained).flags, LBD_BE_F_VALID) << "pinned flows keep going";
}

TEST_F(Fixture, GracefulRemoveKeepsTheIdValidForcedRemoveInvalidatesIt)
{
    st.apply({vip("web", "198.18.1.100", 80,
                  {{"198.18.2.10", 1}, {"198.18.2.11", 1}, {"198.18.2.12", 1}})});
    const uint32_t a = id_of("web", "198.18.2.10");
    const uint32_t b = id_of("web", "198.18.2.11");
    const uint32_t gen_b = w.backends.at(b).gen;

    ASSERT_TRUE(st.remove_backend("web", ip("198.18.2.10"), false));
    EXPECT_EQ(w.backends.at(a).flags, LBD_BE_F_VALID);
    ASSERT_TRUE(st.remove_backend("web", ip("198.18.2.11"), true));
    EXPECT_EQ(w.backends.at(b).flags, 0);
    EXPECT_NE(w.backends.at(b).gen, gen_b) << "a forced remove must change the generation";
    for (auto id : ring_of("web")) {
        EXPECT_NE(id, a);
        EXPECT_NE(id, b);
    }
    EXPECT_FALSE(st.remove_backend("web", ip("198.18.2.99"), false));
    EXPECT_FALSE(st.remove_backend("nope", ip("198.18.2.12"), false));
}

TEST_F(Fixture, EmptyBackendListLeavesNoValidSlot)
{
    st.apply({vip("web", "198.18.1.100", 80, {})});
    for (auto id : ring_of("web"))
        EXPECT_EQ(id, LBD_NO_BACKEND);
}

TEST_F(Fixture, DeletedVipGoesFirstAndItsIdsAreInvalidated)
{
    st.apply({vip("web", "198.18.1.100", 80, {{"198.18.2.10", 1}}),
              vip("dns", "198.18.1.100", 53, {{"198.18.2.20", 1}})});
    const uint32_t id = id_of("web", "198.18.2.10");
    auto log = st.apply({vip("dns", "198.18.1.100", 53, {{"198.18.2.20", 1}})});
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(w.vips.size(), 1u);
    EXPECT_EQ(w.backends.at(id).flags, 0);
}

TEST_F(Fixture, ChangingAVipsAddressUnderTheSameNameReplacesIt)
{
    st.apply({vip("web", "198.18.1.100", 80, {{"198.18.2.10", 1}})});
    st.apply({vip("web", "198.18.1.101", 80, {{"198.18.2.10", 1}})});
    ASSERT_EQ(w.vips.size(), 1u);
    EXPECT_EQ(st.vips().at("web").address, ip("198.18.1.101"));
}

TEST(BackendIds, RetiredIdsAreReusedLastWithANewGeneration)
{
    BackendIds ids(2);
    auto a = ids.take();
    auto b = ids.take();
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->first, 1u);
    EXPECT_EQ(b->first, 2u);
    EXPECT_FALSE(ids.take()) << "capacity 2";
    ids.retire(a->first);
    auto c = ids.take();
    ASSERT_TRUE(c);
    EXPECT_EQ(c->first, a->first);
    EXPECT_NE(c->second, a->second);
    const uint32_t g = ids.release(b->first);
    EXPECT_NE(g, b->second);
    auto d = ids.take();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->first, b->first);
}

TEST_F(Fixture, EncapSourcesBecomeBaseAndHostmask)
{
    st.set_encap_sources(Prefix::parse("198.18.0.0/24"), Prefix::parse("fd00:1b::/64"));
    EXPECT_EQ(w.config.flags, LBD_CFG_F_HAVE_SRC_V4 | LBD_CFG_F_HAVE_SRC_V6);
    EXPECT_EQ(ntohl(w.config.src_v4_base.w[0]), 0xc6120000u);
    EXPECT_EQ(ntohl(w.config.src_v4_hostmask.w[0]), 0x000000ffu);
    EXPECT_EQ(w.config.src_v6_hostmask.w[0], 0u);
    EXPECT_EQ(w.config.src_v6_hostmask.w[1], 0u);
    EXPECT_EQ(w.config.src_v6_hostmask.w[2], 0xffffffffu);
    EXPECT_EQ(w.config.src_v6_hostmask.w[3], 0xffffffffu);
    st.set_encap_sources(std::nullopt, std::nullopt);
    EXPECT_EQ(w.config.flags, 0u);
}

}  // namespace
