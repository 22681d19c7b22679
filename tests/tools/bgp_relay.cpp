// The ExaBGP API process for tests: what `lbd --exabgp-relay SOCKET` is in lbd.
#include <cstdio>

#include "bgp/relay.h"

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: bgp_relay SOCKET\n");
        return 2;
    }
    return lbd::bgp::run_exabgp_relay(argv[1]);
}
