// Job kinds: how the runner prepares a job from what the technique reads besides the model, and
// what the manifest records of it. Each kind is declared once here (like a technique in
// techniques/registry.cpp) and every technique names its kind (TechniqueInfo::kind):
//   explain    one image + target classes -> maps (attribution techniques)
//   generate   no image -> a picture optimized from noise (featurevis)
//   transform  one image, no target -> the image changed or reconstructed (deepdream, invert)
//   style      --content and --style images (options of the technique) -> a picture (style)
#pragma once

#include <string>
#include <vector>

#include "netlens/runner/runner.h"

namespace netlens {

struct JobEnv {
  const Job& job;
  Model& model;
  const std::string& out_dir;  // the run folder: manifest paths are relative to it
  double load_ms = 0;          // time to get the model (0 when cached)
};

struct JobKindInfo {
  JobKind kind;
  std::string name;
  int images = 1;              // --image files one job reads (0: none may be given)
  std::string no_image;        // when images is 0: why --image is refused, for the message
  Json (*run)(JobEnv& env);    // runs the job; returns its manifest entries
};

const std::vector<JobKindInfo>& JobKinds();
const JobKindInfo& KindOf(const TechniqueInfo& technique);

}  // namespace netlens
