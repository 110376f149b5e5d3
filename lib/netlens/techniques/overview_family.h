// Techniques that compose others into an overview of a model on an image: gist (many techniques
// across a sample of layers, one figure, an animation) and factorize (neuron groups by NMF).
#pragma once

#include "netlens/techniques/technique.h"

namespace netlens {

TechniqueInfo GistTechnique();
TechniqueInfo FactorizeTechnique();

}  // namespace netlens
