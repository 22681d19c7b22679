// The ExaBGP API process. ExaBGP runs it (the `run` line of the generated
// configuration), reads commands from its stdout and writes events to its
// stdin; the relay connects those to the unix socket of lbd's BgpSpeaker.
#pragma once

#include <string>

namespace lbd::bgp {

/// Connects to `socket_path` and copies stdin to the socket and the socket
/// to stdout until either side closes. Returns the exit status: 0 when
/// ExaBGP or the speaker closed, 1 on errors (reported on stderr, which
/// ExaBGP passes through to lbd's log).
int run_exabgp_relay(const std::string& socket_path);

}  // namespace lbd::bgp
