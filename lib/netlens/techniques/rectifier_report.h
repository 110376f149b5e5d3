// What the guided and deconvnet rules do to a model's activations: how many rectifiers they
// replace, of which kinds, and which activations (SiLU, GELU, Hardswish, ...) keep their ordinary
// gradient. Said once per model in the log (a warning when the map is partly or wholly the vanilla
// gradient) and returned for each job's manifest (metrics.activations).
#pragma once

#include <nlohmann/json.hpp>

#include "netlens/model/graph.h"
#include "netlens/model/model.h"
#include "netlens/model/rectifier_op.h"

namespace netlens {

nlohmann::json RectifierReport(Model& model, BackwardRule rule);

// The model's activations as the rules see them (CountActivations in model/graph.h); analysed
// once per model.
ActivationCensus ActivationsOf(Model& model);

// Whether DeepLIFT on this model may run one backward pass over the inputs alone
// (DeepLiftOneBackwardIsExact in model/graph.h); analysed once per model.
bool DeepLiftOneBackward(Model& model);

}  // namespace netlens
