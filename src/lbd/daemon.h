// The daemon: one object owning the io_context, the datapath, the state
// engine, the control socket and the signal handling. main() builds it.
#pragma once

#include <string>

#include "lbd/core/config.h"

namespace lbd {

/// Runs lbd until SIGTERM/SIGINT; returns the exit status. Throws
/// std::runtime_error for start-up failures (nothing is left half-attached).
int run_daemon(const std::string& config_path, Config cfg);

/// `lbd --detach`: removes everything lbd pinned and attached under pin_path.
int detach_datapath(const std::string& pin_path);

}  // namespace lbd
