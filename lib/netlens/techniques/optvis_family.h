// Image-optimization techniques (the Lucid family), one file each; registered in registry.cpp.
#pragma once

#include "netlens/optvis/picture.h"
#include "netlens/techniques/technique.h"

namespace netlens {

TechniqueInfo FeaturevisTechnique();
TechniqueInfo DeepDreamTechnique();
TechniqueInfo InvertTechnique();
TechniqueInfo StyleTechnique();

// Style transfer's layers where the user names none, from forward order (Gatys' set on VGG-19).
void DefaultStyleLayers(Model& model, std::vector<std::string>& content, std::vector<std::string>& style);
// An image file as style transfer reads it: `longer` pixels on its longer side, in [0, 1].
torch::Tensor LoadStylePicture(const std::string& path, int64_t longer, const Model& model);

// Pictures in [0, 1] -> the model's normalized input.
inline torch::Tensor ToModelInputOf(const torch::Tensor& pictures, const Model& model) {
  return optvis::ToModelInput(pictures, model.meta());
}

}  // namespace netlens
