// What a config reload may change live. Pure.
#pragma once

#include <string>
#include <vector>

#include "lbd/core/config.h"

namespace lbd {

/// The datapath keys that differ between `running` and `next` and can only
/// change with a restart (they size or attach the program). Empty: the reload
/// can be applied live.
std::vector<std::string> restart_only_changes(const DatapathConfig& running,
                                              const DatapathConfig& next);

}  // namespace lbd
