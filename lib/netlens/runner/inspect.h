// `netlens inspect`: a model's layers with type and output shape, its metadata and predictions
// on a probe input.
#pragma once

#include <string>

#include "netlens/core/options.h"
#include "netlens/model/model.h"

namespace netlens {

// The layers as JSON: [{path, type, order, shape, capturable, why_not?}] plus model facts.
Json InspectJson(Model& model);

// A human-readable table; with `all`, also the modules that cannot be captured and why.
std::string InspectTable(Model& model, bool all);

}  // namespace netlens
