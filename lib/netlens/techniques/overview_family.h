// Techniques that compose others into an overview of a model on an image: gist (many techniques
// across a sample of layers, one figure, an animation), factorize (neuron groups by NMF) and
// evaluate (faithfulness scores of other techniques' maps).
#pragma once

#include "netlens/techniques/technique.h"

namespace netlens {

TechniqueInfo GistTechnique();
TechniqueInfo FactorizeTechnique();
TechniqueInfo EvaluateTechnique();

}  // namespace netlens
