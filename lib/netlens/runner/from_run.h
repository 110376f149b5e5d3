// Jobs read from an earlier run's folder rather than given: `netlens evaluate --from DIR` scores
// the maps a run wrote. A technique takes part by declaring a path option `from` and a string-list
// option `maps` ("technique=file.npy", the maps it is given instead of computing them).
#pragma once

#include <string>
#include <vector>

#include "netlens/runner/runner.h"

namespace netlens {

// One job per (model, image, target) of DIR/manifest.json's successful attribution entries, with
// the model, image, target and preprocessing options the run recorded (options the user gave
// win) and `maps` naming each technique's first map. Problems (no manifest, nothing to score)
// go to `problems`.
std::vector<Job> JobsFromRun(const TechniqueInfo& technique, const Json& values, const std::string& folder,
                             const std::string& where, std::vector<std::string>& problems);

}  // namespace netlens
