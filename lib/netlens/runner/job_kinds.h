// Job kinds: how the runner prepares a job from what the technique reads besides the model, and
// what the manifest records of it. Each kind is declared once here (like a technique in
// techniques/registry.cpp) and every technique names its kind (TechniqueInfo::kind):
//   explain    one image + target classes -> maps (attribution techniques)
//   generate   no image -> a picture optimized from noise (featurevis)
//   transform  one image, no target -> the image changed or reconstructed (deepdream, invert)
//   style      --content and --style images (options of the technique) -> a picture (style)
#pragma once

#include <exception>
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

// Batched explain jobs (TechniqueInfo::batched): jobs that differ only in their image run as one
// pass per batch, the prediction taken from the technique's own forward, each image written with
// its own files and manifest entry as a job of its own would be.
//
// Whether a job can join a batch: a batched technique, and a target that needs no prediction
// first (none or top1: each image's own top class; or one class).
bool Batchable(const Job& job);
// What the jobs of one batch share: technique, model and every option but the image and folder.
std::string BatchKey(const Job& job);
// Images per batch for such a job: --batch-images, or (0) as many as the memory budget allows for
// a forward and backward pass at the model's input size, at most 16.
int64_t BatchImages(const Job& job, const Model& model);
// One job's result: its manifest entries, or the error that failed it (its image unreadable; or
// the batch's pass, which then fails every job of the batch).
struct BatchOutcome {
  Json entries;
  std::exception_ptr error;
};
std::vector<BatchOutcome> RunExplainBatch(const std::vector<const Job*>& jobs, Model& model,
                                          const std::string& out_dir, double load_ms);
const JobKindInfo& KindOf(const TechniqueInfo& technique);

}  // namespace netlens
