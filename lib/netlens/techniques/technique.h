// What a technique is: a name, a one-line summary, its own options (declared once, see
// core/options.h), the kind of job it is (what it reads besides the model) and a function from
// (model, prepared image, target, options) to raw tensors. Rendering, files and the manifest are
// the runner's job, so techniques stay pure computations.
#pragma once

#include "netlens/model/libtorch.h"

#include <string>
#include <vector>

#include "netlens/core/options.h"
#include "netlens/image/image_io.h"
#include "netlens/model/model.h"

namespace netlens {

struct Artifact {
  enum class Kind {
    kInputAttribution,  // 1 x C x H x W, shaped like the input
    kLayerMap,          // 1 x 1 x h x w at a layer's resolution (a CAM), rendered upsampled
    kRawOnly,           // written as .npy only (e.g. a map of class indices)
    kPicture,           // N x 3 x H x W RGB in [0, 1]: a PNG per sample (+ a grid when N > 1)
    kAnimation,         // T x N x 3 x H x W RGB in [0, 1]: frames of an animated GIF
    kFigure,            // H x W x 3 uint8 BGR: a finished figure, written as a PNG only
  };
  std::string name;       // file stem part: "guided", "gradcam"
  torch::Tensor tensor;   // raw result, any device, the model's dtype
  Kind kind = Kind::kInputAttribution;
  std::string layer;      // module path for layer maps
  bool pos_neg = false;   // also render positive / negative saliency images
  bool nearest = false;   // layer maps: nearest instead of bilinear upsampling when rendered
  std::vector<std::string> captions;  // pictures: one per sample (file name part, grid label)
  int frame_delay_cs = 8;  // animations: hundredths of a second per frame (the last one longer)
};

// What a job reads besides the model, hence how the runner prepares it (runner/job_kinds.h).
enum class JobKind {
  kExplain,    // one image and its target classes -> maps (the attribution techniques)
  kGenerate,   // no image: a picture is optimized from noise (featurevis)
  kTransform,  // one image, no target: it is changed or reconstructed (deepdream, invert)
  kStyle,      // a content and style images of its own options, no --image (style)
};

struct TechniqueContext {
  Model& model;
  const InputImage& input;  // empty (no path, no tensor) for kGenerate jobs
  int64_t target = 0;
  const Params& params;
  Json metrics = Json::object();  // figures for the manifest (e.g. IG's completeness delta)
  std::vector<std::string> warnings;  // recorded in the manifest entry (and logged by the technique)
  // Batched jobs (TechniqueInfo::batched): input.tensor holds N images and `targets` one class per
  // row, -1 for the row's top class, which the technique's own forward resolves (written back
  // here). Undefined: `target` for the one image.
  torch::Tensor targets;
  // The logits of the technique's own forward (N x K, detached), when it ran one through
  // TargetGradients(ctx, ...): the runner takes the predictions from them instead of a forward of
  // its own.
  torch::Tensor logits;
};

using TechniqueFn = std::vector<Artifact> (*)(TechniqueContext& ctx);

// The batched passes a technique runs with its `batch_size` option, for the memory budget.
enum class BatchPass { kNone, kForward, kForwardBackward };

struct TechniqueInfo {
  std::string name;
  std::string summary;
  OptionTable options;  // this technique's own options (the common ones are the runner's)
  TechniqueFn run = nullptr;
  BatchPass batch_pass = BatchPass::kNone;
  JobKind kind = JobKind::kExplain;
  bool writes_report = false;  // a run of it ends with report.html (as with --report)
  // Runs on N images at once (ctx.targets; one forward and one backward pass for all) and returns
  // artifacts with N rows, row i the map of image i, equal to a run on image i alone; its metrics
  // describe the pass, not one image. The runner batches jobs that differ only in their image.
  bool batched = false;
};

// `info` with `batched` set (for the registrations of techniques that run on N images at once).
inline TechniqueInfo Batched(TechniqueInfo info) {
  info.batched = true;
  return info;
}

}  // namespace netlens
