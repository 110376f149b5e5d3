// The techniques of the gradient family, each defined in its own .cpp file.
#pragma once

#include "netlens/techniques/technique.h"

namespace netlens {

TechniqueInfo SaliencyTechnique();
TechniqueInfo GuidedTechnique();
TechniqueInfo DeconvnetTechnique();
TechniqueInfo InputXGradientTechnique();
TechniqueInfo GradCamTechnique();
TechniqueInfo GuidedGradCamTechnique();

}  // namespace netlens
