// Image-optimization techniques (the Lucid family), one file each; registered in registry.cpp.
#pragma once

#include "netlens/optvis/picture.h"
#include "netlens/techniques/technique.h"

namespace netlens {

TechniqueInfo FeaturevisTechnique();
TechniqueInfo DeepDreamTechnique();
TechniqueInfo InvertTechnique();
TechniqueInfo StyleTechnique();

// Pictures in [0, 1] -> the model's normalized input.
inline torch::Tensor ToModelInputOf(const torch::Tensor& pictures, const Model& model) {
  return optvis::ToModelInput(pictures, model.meta());
}

}  // namespace netlens
