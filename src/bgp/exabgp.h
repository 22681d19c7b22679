// ExaBGP 4.2 as lbd speaks to it: the configuration file, the environment,
// the process-API commands lbd writes and the text-encoder messages it reads
// back. Pure: text in, text out.
//
// Commands are addressed to one neighbor each ("neighbor 198.18.0.1 announce
// route ..."), so that a prefix goes only to the sessions that carry its
// family, with the next hop that fits the session.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bgp/bgp_config.h"
#include "bgp/policy.h"
#include "common/addr.h"

namespace lbd::bgp::exabgp {

/// Name of the API process in the configuration.
inline constexpr std::string_view kProcessName = "lbd";

/// A word that may stand in ExaBGP's configuration unquoted (the `run`
/// line): letters, digits and _ . / + : @ = % - only.
bool safe_word(std::string_view w);

/// The configuration file: one `process` that runs `run` (argv; every word
/// must be safe_word, else std::invalid_argument) with the text encoder, and
/// one `neighbor` block per neighbor (router-id, local-address, local-as,
/// peer-as, hold-time, md5-password, passive + listen 179, graceful-restart
/// with manual-eor, families, api with neighbor changes and sent updates).
std::string config_text(const BgpConfig& cfg, const std::vector<std::string>& run);

/// Environment for ExaBGP ("name=value"): foreground, root, log to stdout,
/// acknowledgements on, no CLI pipes, no listening except per passive neighbor.
std::vector<std::string> environment();

/// "neighbor N announce route P next-hop H [med M] [community [..]] [large-community [..]]"
std::string announce(const IpAddr& neighbor, const Prefix& p, const RouteAttributes& a);
/// "neighbor N withdraw route P"
std::string withdraw(const IpAddr& neighbor, const Prefix& p);
/// "neighbor N announce eor ipv4 unicast" (graceful restart: sent once the routes are in)
std::string eor(const IpAddr& neighbor, Family f);

/// The commands for one change: one for each neighbor carrying the prefix's family.
std::vector<std::string> commands(const BgpConfig& cfg, const RouteChange& c);

/// One line ExaBGP writes to the API process.
struct Message {
    enum class Kind {
        Done,           ///< "done": the last command was accepted
        Error,          ///< "error": the last command failed
        Shutdown,       ///< "shutdown ...": ExaBGP is exiting
        Connected,      ///< "neighbor N connected": TCP up, OPEN exchange
        Up,             ///< "neighbor N up": Established
        Down,           ///< "neighbor N down - REASON"
        SentAnnounced,  ///< "neighbor N send update announced P ..."
        SentWithdrawn,  ///< "neighbor N send update withdrawn P"
        SentEor,        ///< "neighbor N send update route eor ..."
        Other,          ///< anything else (update start/end, blank)
    };
    Kind kind = Kind::Other;
    IpAddr neighbor;
    Prefix prefix;     ///< Sent*
    std::string text;  ///< Down: the reason
    bool operator==(const Message&) const = default;
};

Message parse(std::string_view line);
std::string to_string(Message::Kind k);

}  // namespace lbd::bgp::exabgp
