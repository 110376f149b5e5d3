// Options shared by the image-optimization techniques (featurevis, invert), declared once, and
// their translation into the engine's settings (optvis/).
#pragma once

#include <string>
#include <vector>

#include "netlens/core/options.h"
#include "netlens/model/model.h"
#include "netlens/optvis/optimize.h"
#include "netlens/optvis/param.h"
#include "netlens/optvis/transform.h"
#include "netlens/techniques/technique.h"

namespace netlens {

// The step size where --lr is not given, by optimizer: Lucid's Adam learning rate, and the full
// step of L-BFGS (LibTorch's default, the PyTorch style tutorial's). Each is far off for the
// other: Adam at 1.0 moves a pixel by the whole value range per step.
constexpr double kAdamLr = 0.05;
constexpr double kLbfgsLr = 1.0;
inline double DefaultLr(const std::string& optimizer) { return optimizer == "adam" ? kAdamLr : kLbfgsLr; }

// steps, lr, optimizer, param, decorrelate, valid, transforms, upsample, thresholds, frames, seed,
// progress, with the technique's defaults.
struct OptimizationDefaults {
  int64_t steps = 512;
  std::string transforms = "standard";
  std::string param = "fft";
  std::string valid = "sigmoid";
  std::string optimizer = "adam";
  int64_t frames = 32;
};
OptionTable OptimizationOptions(const OptimizationDefaults& defaults);

optvis::ParamOptions ParamOptionsFrom(const Params& p, const Model& model, int64_t batch,
                                      int64_t height, int64_t width);
// The transform chain; pictures smaller than the model's input are resampled to it (Lucent's
// upsampling of pictures under 224) unless --no-upsample.
optvis::TransformOptions TransformOptionsFrom(const Params& p, Model& model, int64_t height,
                                              int64_t width);
// The run's settings from the options. `implied_optimizer`, where not empty, is the optimizer a
// technique runs with when --optimizer is not given (style's sliced-wasserstein: Adam); the step
// size's default and the warnings follow the optimizer chosen.
optvis::OptimizeOptions OptimizeOptionsFrom(const Params& p, const std::string& what,
                                            const std::string& implied_optimizer = "");

// Refuses an optimization that would not fit the memory budget (--memory-limit), naming its
// parts and the remedies. Counted: the forward+backward pass on `batch` pictures of height x width
// as the model sees them; for `batch` pictures of picture_height x picture_width (0: the same),
// the state of `run`'s optimizer (L-BFGS: two copies of the picture per pair of history kept, at
// most one pair per step; Adam: its moments), its animation frames (at most
// optvis::kAnimationSide on a side) and snapshots. Without `run` (a plain gradient ascent such as
// deepdream's) no optimizer state is counted, and the frames are --frames' where declared.
// `size_option` names the option that makes pictures smaller.
void CheckOptimizationMemory(const Params& p, const Model& model, const std::string& what,
                             const optvis::OptimizeOptions* run, int64_t batch, int64_t height, int64_t width,
                             int64_t picture_height = 0, int64_t picture_width = 0,
                             const std::string& size_option = "--size");

// Artifacts and manifest figures of an optimization run: the picture (with captions), a picture
// per snapshot, the animation; warnings for a constant objective or an early stop.
std::vector<Artifact> OptimizationArtifacts(const optvis::OptimizeResult& result,
                                            const std::string& name,
                                            const std::vector<std::string>& captions,
                                            TechniqueContext& ctx);

}  // namespace netlens
