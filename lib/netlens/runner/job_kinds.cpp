#include "netlens/runner/job_kinds.h"

#include "netlens/model/libtorch.h"

#include <filesystem>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/image_io.h"
#include "netlens/runner/write_artifacts.h"

namespace netlens {
namespace fs = std::filesystem;

namespace {

// Top-k classes of one image's probabilities (a vector over classes, on the CPU).
Json Predictions(const Model& model, const torch::Tensor& probs, int64_t k) {
  const auto top = probs.topk(std::min<int64_t>(k, probs.size(0)));
  Json out = Json::array();
  for (int64_t i = 0; i < std::get<1>(top).size(0); ++i) {
    const int64_t index = std::get<1>(top)[i].item<int64_t>();
    out.push_back({{"index", index}, {"label", model.Label(index)},
                   {"probability", std::get<0>(top)[i].item<double>()}});
  }
  return out;
}

// Refuses a technique's batched passes (and the copies of the input it makes) when they would not
// fit the memory budget, naming the batch size that would.
void CheckBatchMemory(const TechniqueInfo& technique, const Params& p, const Model& model,
                      const InputImage& input, const MemoryBudget& budget) {
  if (budget.bytes <= 0 || technique.batch_pass == BatchPass::kNone) return;
  const bool grad = technique.batch_pass == BatchPass::kForwardBackward;
  const int64_t h = input.tensor.size(2), w = input.tensor.size(3);
  const int64_t batch = p.Int("batch_size");
  int64_t copies = 0;
  for (const char* key : {"samples", "steps"})
    for (const auto& spec : technique.options)
      if (spec.key == key) copies = std::max<int64_t>(copies, p.Int(key));
  const double copy_bytes = 2.0 * static_cast<double>(copies) * input.tensor.numel() *
                            input.tensor.element_size();
  const double need = model.PassBytes(h, w, batch, grad) + copy_bytes;
  if (need <= budget.bytes) return;
  const double per_sample = model.PassBytes(h, w, 1, grad);
  const int64_t fits = static_cast<int64_t>(std::max(0.0, (budget.bytes - copy_bytes) / per_sample));
  throw UsageError(technique.name + " with --batch-size " + std::to_string(batch) + " on a " +
                   std::to_string(w) + "x" + std::to_string(h) + " input needs about " + FormatBytes(need) +
                   (grad ? " (forward and backward)" : " (forward)") + ", more than the budget of " +
                   FormatBytes(budget.bytes) + " (" + budget.source + "); " +
                   (fits >= 1 ? "--batch-size " + std::to_string(std::min<int64_t>(fits, batch)) + " fits"
                              : std::string("use a smaller input (--resize crop) or fewer samples")));
}

// What every kind records of a job: technique, image, model, device, options, warnings, metrics.
Json BaseEntry(const JobEnv& env, const TechniqueContext& ctx) {
  const Params& p = env.job.params;
  const Model& m = env.model;
  Json entry{
      {"status", "ok"},
      {"technique", env.job.technique->name},
      {"model", {{"path", m.path()}, {"name", m.meta().name},
                 {"layers", env.model.lens().layers().size()},
                 {"metadata_source", m.meta().source},
                 {"labels_source", m.meta().labels_source},
                 {"input", {m.meta().channels, m.meta().height, m.meta().width}},
                 {"dtype", p.Str("dtype")}}},
      {"device", m.device().str()},
      {"options", p.Resolved()},
  };
  if (!env.job.image.empty()) entry["image"] = env.job.image;
  if (!ctx.metrics.empty()) entry["metrics"] = ctx.metrics;
  if (!ctx.warnings.empty()) entry["warnings"] = ctx.warnings;
  return entry;
}

InputLimits LimitsOf(const JobEnv& env) {
  const Params& p = env.job.params;
  InputLimits limits;
  limits.budget = ParseMemoryBudget(p.Str("memory_limit"), env.model.device());
  if (p.IsSet("max_pixels")) limits.max_pixels = p.Int("max_pixels");
  return limits;
}

Json RunExplain(JobEnv& env) {
  const Params& p = env.job.params;
  StageTimer timer;
  const InputLimits limits = LimitsOf(env);
  const InputImage input = PrepareInput(env.job.image, env.model, ParseResizePolicy(p.Str("resize")), limits);
  CheckBatchMemory(*env.job.technique, p, env.model, input, limits.budget);
  const double image_ms = timer.Stage("read and preprocess image");
  const torch::Tensor logits = env.model.Logits(input.tensor);
  if (!torch::isfinite(logits.to(torch::kFloat64)).all().item<bool>())
    throw RuntimeError("the model's output for " + env.job.image + " is not finite (NaN or Inf in " +
                       std::to_string(logits.size(1)) + " logits); nothing to explain");
  const torch::Tensor probs = torch::softmax(logits.to(torch::kFloat64), 1)[0].cpu();
  const Json predictions = Predictions(env.model, probs, 5);
  const auto targets = ResolveTargets(p.IsSet("target") ? p.Strs("target") : std::vector<std::string>{},
                                      env.model, logits);
  const double predict_ms = timer.Stage("predict");
  Log().info("top-1: {} ({}) p={:.3f}", predictions[0]["label"].get<std::string>(),
             predictions[0]["index"].get<int64_t>(), predictions[0]["probability"].get<double>());

  Json entries = Json::array();
  const std::string& folder = env.job.folder;
  for (const int64_t target : targets) {
    const std::string label = env.model.Label(target);
    Log().info("target: {} ({}), logit {:.4f}", label, target, logits[0][target].item<double>());
    TechniqueContext ctx{env.model, input, target, p};
    StageTimer tt;
    const std::vector<Artifact> artifacts = env.job.technique->run(ctx);
    const double compute_ms = tt.Stage(env.job.technique->name);
    std::string base = fs::path(env.job.image).stem().string();
    if (targets.size() > 1) base += "_t" + std::to_string(target);
    const Json outputs = WriteArtifacts(artifacts, input, folder, base, env.out_dir,
                                        p.Float("outlier_percent"));
    const double write_ms = tt.Stage("write outputs");
    Json entry = BaseEntry(env, ctx);
    entry.update(Json{
        {"target", {{"index", target}, {"label", label}, {"score", logits[0][target].item<double>()},
                    {"probability", probs[target].item<double>()}}},
        {"predictions", predictions},
        {"outputs", outputs},
        {"timings_ms", {{"model", env.load_ms}, {"image", image_ms}, {"predict", predict_ms},
                        {"compute", compute_ms}, {"write", write_ms}}},
    });
    entries.push_back(std::move(entry));
  }
  return entries;
}

// Generate and transform jobs: one run of the technique, no target; `input` is empty for
// generate jobs. Output files are named after the image (transform) or the technique (generate).
Json RunOnce(JobEnv& env, const InputImage& input, double image_ms, std::string base = "") {
  const Params& p = env.job.params;
  TechniqueContext ctx{env.model, input, 0, p};
  StageTimer tt;
  const std::vector<Artifact> artifacts = env.job.technique->run(ctx);
  const double compute_ms = tt.Stage(env.job.technique->name);
  if (base.empty())
    base = env.job.image.empty() ? env.job.technique->name : fs::path(env.job.image).stem().string();
  const Json outputs = WriteArtifacts(artifacts, input, env.job.folder, base, env.out_dir,
                                      p.Float("outlier_percent"));
  const double write_ms = tt.Stage("write outputs");
  Json entry = BaseEntry(env, ctx);
  entry["outputs"] = outputs;
  entry["timings_ms"] = {{"model", env.load_ms}, {"image", image_ms}, {"compute", compute_ms},
                         {"write", write_ms}};
  return Json::array({entry});
}

Json RunGenerate(JobEnv& env) {
  static const InputImage kNoImage;
  return RunOnce(env, kNoImage, 0);
}

Json RunStyle(JobEnv& env) {
  static const InputImage kNoImage;
  return RunOnce(env, kNoImage, 0, fs::path(env.job.params.Str("content")).stem().string());
}

Json RunTransform(JobEnv& env) {
  StageTimer timer;
  const InputImage input = PrepareInput(env.job.image, env.model,
                                        ParseResizePolicy(env.job.params.Str("resize")), LimitsOf(env));
  return RunOnce(env, input, timer.Stage("read and preprocess image"));
}

}  // namespace

const std::vector<JobKindInfo>& JobKinds() {
  static const std::vector<JobKindInfo> kinds{
      {JobKind::kExplain, "explain", 1, "", RunExplain},
      {JobKind::kGenerate, "generate", 0, "it optimizes a picture from noise", RunGenerate},
      {JobKind::kTransform, "transform", 1, "", RunTransform},
      {JobKind::kStyle, "style", 0, "it reads --content and --style", RunStyle},
  };
  return kinds;
}

const JobKindInfo& KindOf(const TechniqueInfo& technique) {
  for (const auto& k : JobKinds())
    if (k.kind == technique.kind) return k;
  throw InternalError("technique " + technique.name + " has an unregistered job kind");
}

}  // namespace netlens
