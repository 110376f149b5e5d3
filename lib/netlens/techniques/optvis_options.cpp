#include "netlens/techniques/optvis_options.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/optvis/optimize.h"
#include "netlens/optvis/picture.h"
#include "netlens/techniques/common.h"

namespace netlens {

OptionTable OptimizationOptions(const OptimizationDefaults& d) {
  return {
      {"steps", OptionType::kInt, "optimization steps", d.steps, {}, 1.0, 1e6},
      {"lr", OptionType::kFloat, "learning rate (Adam; default 0.05) or step length (L-BFGS; default 1.0)",
       nullptr, {}, 1e-8, 1e3},
      {"optimizer", OptionType::kString, "adam, or lbfgs (one evaluation per step)", d.optimizer, {"adam", "lbfgs"}},
      {"lbfgs_history", OptionType::kInt,
       "L-BFGS: past steps kept for its curvature estimate (each two copies of the picture; fewer: "
       "less memory and faster steps on large pictures)", optvis::kLbfgsHistory, {}, 1.0, 1000.0},
      {"param", OptionType::kString, "parameterization of the picture", d.param, {"fft", "pixel"}},
      {"decorrelate", OptionType::kBool, "decorrelated colour (Lucid's ImageNet colour matrix)", true},
      {"valid", OptionType::kString, "how values are kept in [0, 1]", d.valid, {"sigmoid", "clamp"}},
      {"transforms", OptionType::kString,
       "robustness: standard (Lucid's pad, jitter, scale, rotate, jitter), jitter, none",
       d.transforms, {"standard", "jitter", "none"}},
      {"upsample", OptionType::kBool, "resample pictures smaller than the model's input to it", true},
      {"thresholds", OptionType::kIntList, "steps at which a snapshot picture is written", nullptr,
       {}, 1.0, 1e6, false, "N,..."},
      {"frames", OptionType::kInt, "frames of the animated GIF of the optimization (0: no GIF)", d.frames,
       {}, 0.0, 1000.0},
      {"seed", OptionType::kInt, "seed of the start noise and the transforms", 0, {}, 0.0, 4294967295.0},
      {"progress", OptionType::kString, "per-step progress: auto (a bar on a terminal), bar, json "
       "(lines on stdout), none", "auto", {"auto", "bar", "json", "none"}},
  };
}

optvis::ParamOptions ParamOptionsFrom(const Params& p, const Model& model, int64_t batch,
                                      int64_t height, int64_t width) {
  optvis::ParamOptions o;
  o.space = p.Str("param");
  o.decorrelate = p.Bool("decorrelate");
  o.valid = p.Str("valid");
  o.batch = batch;
  o.channels = model.meta().channels;
  if (o.channels != 3 && o.decorrelate)
    Log().info("a {}-channel model: colour decorrelation is off", o.channels);
  o.height = height;
  o.width = width;
  o.seed = static_cast<uint64_t>(p.Int("seed"));
  o.device = model.device();
  o.dtype = model.dtype();
  return o;
}

namespace {

// Whether the model runs on a 1 x C x h x w input: one no-grad forward of zeros, remembered per
// model file, dtype and size for the process (the state of this function, guarded by its mutex),
// the answer logged once each.
bool TakesSize(Model& model, int64_t h, int64_t w) {
  static std::mutex mutex;
  static std::map<std::string, bool> known;
  const std::string key = model.path() + "|" + c10::toString(model.dtype()) + "|" + std::to_string(h) + "x" + std::to_string(w);
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto found = known.find(key);
    if (found != known.end()) return found->second;
  }
  bool takes = true;
  std::string why;
  try {
    torch::NoGradGuard no_grad;
    model.Logits(torch::zeros({1, model.meta().channels, h, w}, torch::TensorOptions().device(model.device()).dtype(model.dtype())));
  } catch (const std::exception& e) {
    takes = false;
    why = TorchMessageSummary(e.what());
  }
  if (!takes)
    Log().info("the model does not take a {}x{} picture ({}); optimized pictures are resampled to its {}x{} input "
               "after the transforms", w, h, why, model.meta().width, model.meta().height);
  std::lock_guard<std::mutex> lock(mutex);
  known[key] = takes;
  return takes;
}

}  // namespace

optvis::TransformOptions TransformOptionsFrom(const Params& p, Model& model, int64_t height,
                                              int64_t width) {
  const std::string kind = p.Str("transforms");
  optvis::TransformOptions o = kind == "standard" ? optvis::TransformOptions::Standard()
                                                  : optvis::TransformOptions::None();
  if (kind == "jitter") {
    o.pad = 4;
    o.jitter = 8;
  }
  // Lucid's pixel amounts are for pictures of about 128 pixels: smaller ones get them scaled.
  const double f = std::min(1.0, static_cast<double>(std::min(height, width)) / 128.0);
  if (f < 1) {
    o.pad = std::lround(o.pad * f);
    o.jitter = std::max<int64_t>(o.jitter > 0 ? 2 : 0, std::lround(o.jitter * f));
    o.jitter2 = std::max<int64_t>(o.jitter2 > 0 ? 2 : 0, std::lround(o.jitter2 * f));
  }
  const int64_t mh = model.meta().height, mw = model.meta().width;
  const int64_t seen_h = height + 2 * o.pad, seen_w = width + 2 * o.pad;
  if ((seen_h != mh || seen_w != mw) && !TakesSize(model, seen_h, seen_w)) {
    // A model of one input size (a ViT asserts it; its position embeddings fit one grid): the
    // transformed picture is resampled to that size, whatever --size and --upsample say.
    o.out_height = mh;
    o.out_width = mw;
    return o;
  }
  if (p.Bool("upsample") && (seen_h < mh || seen_w < mw)) {
    o.out_height = mh;
    o.out_width = mw;
    static bool logged = false;
    if (!logged) {
      Log().info("pictures of {}x{} are resampled to the model's {}x{} input (as Lucent does "
                 "under 224; --no-upsample keeps them)", width, height, mw, mh);
      logged = true;
    }
  }
  return o;
}

optvis::OptimizeOptions OptimizeOptionsFrom(const Params& p, const std::string& what,
                                            const std::string& implied_optimizer) {
  optvis::OptimizeOptions o;
  o.steps = p.Int("steps");
  o.optimizer = implied_optimizer.empty() || p.IsSet("optimizer") ? p.Str("optimizer") : implied_optimizer;
  o.history = p.Int("lbfgs_history");
  if (p.IsSet("lbfgs_history") && o.optimizer != "lbfgs")
    Log().warn("{}: --lbfgs-history applies to L-BFGS; ignored with {}", what, o.optimizer);
  o.lr = p.IsSet("lr") ? p.Float("lr") : DefaultLr(o.optimizer);
  if (!p.IsSet("lr") && p.IsSet("optimizer"))
    Log().info("{}: {} at its default step size, --lr {}", what, o.optimizer, o.lr);
  if (p.IsSet("thresholds")) o.thresholds = p.Ints("thresholds");
  o.frames = p.Int("frames");
  o.progress = p.Str("progress");
  o.what = what;
  return o;
}

void CheckOptimizationMemory(const Params& p, const Model& model, const std::string& what,
                             const optvis::OptimizeOptions* run, int64_t batch, int64_t height, int64_t width,
                             int64_t picture_height, int64_t picture_width, const std::string& size_option) {
  const MemoryBudget budget = ParseMemoryBudget(p.Str("memory_limit"), model.device());
  if (budget.bytes <= 0) return;
  const double ph = static_cast<double>(picture_height > 0 ? picture_height : height);
  const double pw = static_cast<double>(picture_width > 0 ? picture_width : width);
  const double element = model.dtype() == torch::kFloat64 ? 8.0 : 4.0;
  // Bytes of one pixel position across the batch's pictures and channels.
  const double pixel = static_cast<double>(batch) * static_cast<double>(model.meta().channels) * element;
  const double picture = pixel * ph * (pw + 2);  // the parameters (an FFT spectrum is as large)
  struct Part {
    std::string what;
    double bytes;
    std::string remedy;
  };
  std::vector<Part> parts{{"a forward and backward pass", model.PassBytes(height, width, batch, /*with_grad=*/true), ""}};
  if (run != nullptr && run->optimizer == "lbfgs") {
    const int64_t history = std::min(run->history, run->steps);  // no more pairs than steps
    parts.push_back({"L-BFGS's history of " + std::to_string(history) + " steps",
                     static_cast<double>(2 * history + 4) * picture, "--optimizer adam or a shorter --lbfgs-history"});
  } else if (run != nullptr) {
    parts.push_back({"Adam's moments", 4 * picture, ""});
  }
  const int64_t frames = run != nullptr ? run->frames : p.Declares("frames") ? p.Int("frames") : 0;
  if (frames > 0) {
    const double f = std::min(1.0, static_cast<double>(optvis::kAnimationSide) / std::max(ph, pw));
    // Kept as they come (and the first), then stacked into one tensor for the GIF: twice.
    parts.push_back({std::to_string(frames + 1) + " animation frames",
                     2.0 * static_cast<double>(frames + 1) * pixel * std::ceil(ph * f) * std::ceil(pw * f),
                     "fewer --frames"});
  }
  if (run != nullptr && !run->thresholds.empty())
    parts.push_back({"the snapshots", static_cast<double>(run->thresholds.size()) * picture, "fewer --thresholds"});
  double need = 0;
  for (const auto& part : parts) need += part.bytes;
  if (need <= budget.bytes) return;
  std::string detail, remedies;
  for (const auto& part : parts) {
    if (part.bytes <= 0) continue;
    detail += (detail.empty() ? "" : ", ") + part.what + " " + FormatBytes(part.bytes);
    if (!part.remedy.empty() && part.bytes >= 0.25 * need) remedies += part.remedy + ", ";
  }
  const int64_t fits = static_cast<int64_t>(budget.bytes / (need / static_cast<double>(batch)));
  remedies += batch > 1 && fits >= 1 ? "optimize at most " + std::to_string(fits) + " at a time (a shorter channel range)"
                                     : "use a smaller " + size_option;
  throw UsageError(what + ": " + std::to_string(batch) + " picture(s) of " + std::to_string(static_cast<int64_t>(pw)) + "x" +
                   std::to_string(static_cast<int64_t>(ph)) + " need about " + FormatBytes(need) + " (" + detail +
                   "), more than the budget of " + FormatBytes(budget.bytes) + " (" + budget.source + "); " + remedies +
                   ", or raise --memory-limit");
}

std::vector<Artifact> OptimizationArtifacts(const optvis::OptimizeResult& result,
                                            const std::string& name,
                                            const std::vector<std::string>& captions,
                                            TechniqueContext& ctx) {
  std::vector<Artifact> out;
  Artifact picture;
  picture.name = name;
  picture.kind = Artifact::Kind::kPicture;
  picture.tensor = result.picture;
  picture.captions = captions;
  out.push_back(picture);
  for (size_t i = 0; i < result.snapshots.size(); ++i) {
    if (result.snapshot_steps[i] == result.steps_done && result.stopped.empty()) continue;
    Artifact snap = picture;
    snap.name = name + "_step" + std::to_string(result.snapshot_steps[i]);
    snap.tensor = result.snapshots[i];
    out.push_back(snap);
  }
  if (result.frames.size() > 1) {
    Artifact anim;
    anim.name = name + "_steps";
    anim.kind = Artifact::Kind::kAnimation;
    anim.tensor = torch::stack(result.frames);
    out.push_back(anim);
  }
  if (result.constant) {
    Warn(ctx, "the objective does not depend on the picture here: " + result.stopped +
                  " (a unit that is zero on the start picture, or a constant layer); the picture is the "
                  "start noise. Try another --seed, --param pixel, or a channel that is active (netlens "
                  "featurevis on LAYER:0..N shows which)");
  } else if (!result.stopped.empty()) {
    Log().error("{}", result.stopped);
    ctx.warnings.push_back(result.stopped);
  }
  ctx.metrics["steps"] = result.steps_done;
  ctx.metrics["seconds"] = result.seconds;
  ctx.metrics["steps_per_second"] = result.seconds > 0 ? result.steps_done / result.seconds : 0.0;
  ctx.metrics["objective_curve"] = result.curve;
  if (!result.curve.empty()) {
    ctx.metrics["objective_first"] = result.curve.front();
    ctx.metrics["objective_last"] = result.curve.back();
    const double per_step_ms = 1000.0 / static_cast<double>(result.steps_done);
    const double objective_ms = result.objective_seconds * per_step_ms, gradient_ms = result.gradient_seconds * per_step_ms,
                 optimizer_ms = result.optimizer_seconds * per_step_ms;
    ctx.metrics["step_ms"] = {{"objective", objective_ms}, {"gradient", gradient_ms}, {"optimizer", optimizer_ms}};
    Log().info("{} steps in {:.2f} s ({:.1f} steps/s), objective {:.4g} -> {:.4g}; a step: objective (forward) {:.1f} ms, "
               "gradient (backward) {:.1f} ms, the optimizer's update {:.1f} ms",
               result.steps_done, result.seconds, result.steps_done / std::max(result.seconds, 1e-9), result.curve.front(),
               result.curve.back(), objective_ms, gradient_ms, optimizer_ms);
  }
  return out;
}

}  // namespace netlens
