// Running one technique inside another (gist runs integrated gradients, factorize featurevis,
// evaluate every technique it scores): the inner technique gets its own options (`values` over
// its defaults, Params::Derived), the same model, input and target, and its metrics and warnings
// are passed up under its name.
#pragma once

#include <string>
#include <vector>

#include "netlens/techniques/technique.h"

namespace netlens {

std::vector<Artifact> RunComposed(TechniqueContext& ctx, const std::string& name, const Json& values,
                                  const std::string& metrics_key);

}  // namespace netlens
