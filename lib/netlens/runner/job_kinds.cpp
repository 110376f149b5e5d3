#include "netlens/runner/job_kinds.h"

#include "netlens/model/libtorch.h"

#include <filesystem>
#include <map>
#include <thread>

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

bool Batchable(const Job& job) {
  if (!job.technique->batched || job.technique->kind != JobKind::kExplain || job.image.empty()) return false;
  if (!job.params.IsSet("target")) return true;
  const std::vector<std::string> specs = job.params.Strs("target");
  if (specs.size() != 1) return false;
  const std::string spec = ToLower(Trim(specs[0]));
  return spec == "top1" || !StartsWith(spec, "top");
}

std::string BatchKey(const Job& job) {
  Json options = job.params.Resolved();
  for (const char* key : {"image", "out", "name", "log_level"}) options.erase(key);
  return job.technique->name + "|" + SafeDump(options);
}

int64_t BatchImages(const Job& job, const Model& model) {
  const int64_t asked = job.params.Int("batch_images");
  if (asked > 0) return asked;
  const MemoryBudget budget = ParseMemoryBudget(job.params.Str("memory_limit"), model.device());
  int64_t n = 16;
  const int64_t h = model.meta().height, w = model.meta().width;
  while (n > 1 && budget.bytes > 0 && model.PassBytes(h, w, n, /*with_grad=*/true) > budget.bytes) n /= 2;
  return n;
}

std::vector<BatchOutcome> RunExplainBatch(const std::vector<const Job*>& jobs, Model& model,
                                          const std::string& out_dir, double load_ms) {
  std::vector<BatchOutcome> out(jobs.size());
  const Job& first = *jobs.front();
  const Params& p = first.params;
  const TechniqueInfo& technique = *first.technique;
  std::vector<InputImage> inputs(jobs.size());
  std::vector<double> image_ms(jobs.size(), 0);
  // Images of one size run together (all of them unless --resize none keeps their own sizes).
  std::map<std::vector<int64_t>, std::vector<size_t>> by_size;
  for (size_t i = 0; i < jobs.size(); ++i) {
    try {
      JobEnv env{*jobs[i], model, out_dir, load_ms};
      StageTimer timer;
      inputs[i] = PrepareInput(jobs[i]->image, model, ParseResizePolicy(p.Str("resize")), LimitsOf(env));
      image_ms[i] = timer.Stage("read and preprocess image");
      by_size[inputs[i].tensor.sizes().vec()].push_back(i);
    } catch (...) {
      out[i].error = std::current_exception();
    }
  }
  if (by_size.size() > 1)
    Log().info("{}: the batch's images come in {} sizes (--resize none); one pass per size", technique.name,
               by_size.size());
  int64_t fixed = -1;  // -1: each image's own top class
  try {
    if (p.IsSet("target") && ToLower(Trim(p.Strs("target")[0])) != "top1") fixed = model.ClassIndex(p.Strs("target")[0]);
  } catch (...) {  // an unknown class fails every job of the batch
    for (auto& o : out)
      if (!o.error) o.error = std::current_exception();
    return out;
  }
  for (const auto& [size, rows] : by_size) {
    std::vector<torch::Tensor> tensors;
    for (size_t i : rows) tensors.push_back(inputs[i].tensor);
    InputImage batch;
    batch.tensor = torch::cat(tensors, 0);
    batch.display = inputs[rows[0]].display;
    const int64_t n = static_cast<int64_t>(rows.size());
    TechniqueContext ctx{model, batch, fixed < 0 ? 0 : fixed, p};
    ctx.targets = torch::full({n}, fixed, torch::kLong);
    std::vector<Artifact> artifacts;
    double compute_ms = 0;
    try {
      StageTimer tt;
      artifacts = technique.run(ctx);
      compute_ms = tt.Stage(technique.name + (n > 1 ? " (" + std::to_string(n) + " images in one pass)" : ""));
      if (!ctx.logits.defined() || ctx.logits.size(0) != n)
        throw InternalError(technique.name + " is declared batched but made no batched forward");
    } catch (...) {
      for (size_t i : rows) out[i].error = std::current_exception();
      continue;
    }
    const torch::Tensor logits = ctx.logits.to(torch::kCPU, torch::kFloat64);
    const torch::Tensor finite = torch::isfinite(logits).all(1);
    const torch::Tensor probs = torch::softmax(logits, 1);
    // Each image's files, the rows spread over the cores (encoding the pictures costs more than
    // the batched pass on a small model).
    const auto write_row = [&](int64_t r) {
      const size_t i = rows[static_cast<size_t>(r)];
      const Job& job = *jobs[i];
      try {
        if (!finite[r].item<bool>())
          throw RuntimeError("the model's output for " + job.image + " is not finite (NaN or Inf in " +
                             std::to_string(logits.size(1)) + " logits); nothing to explain");
        const int64_t target = ctx.targets[r].item<int64_t>();
        const Json predictions = Predictions(model, probs[r], 5);
        Log().info("{}: top-1 {} ({}) p={:.3f}; target {} ({}), logit {:.4f}", job.image,
                   predictions[0]["label"].get<std::string>(), predictions[0]["index"].get<int64_t>(),
                   predictions[0]["probability"].get<double>(), model.Label(target), target,
                   logits[r][target].item<double>());
        std::vector<Artifact> mine = artifacts;
        for (Artifact& a : mine)
          if (a.tensor.defined() && a.tensor.dim() > 0 && a.tensor.size(0) == n) a.tensor = a.tensor.narrow(0, r, 1);
        StageTimer tw;
        const Json outputs = WriteArtifacts(mine, inputs[i], job.folder, fs::path(job.image).stem().string(), out_dir,
                                            p.Float("outlier_percent"));
        const double write_ms = tw.Stage("write outputs");
        JobEnv env{job, model, out_dir, load_ms};
        Json entry = BaseEntry(env, ctx);
        entry.update(Json{
            {"target", {{"index", target}, {"label", model.Label(target)}, {"score", logits[r][target].item<double>()},
                        {"probability", probs[r][target].item<double>()}}},
            {"predictions", predictions},
            {"outputs", outputs},
            {"batch", {{"images", n}, {"row", r}}},
            // The pass is shared: each image is given its share of it; the prediction came from it.
            {"timings_ms", {{"model", load_ms}, {"image", image_ms[i]}, {"predict", 0.0},
                            {"compute", compute_ms / static_cast<double>(n)}, {"write", write_ms}}},
        });
        out[i].entries = Json::array({entry});
      } catch (...) {
        out[i].error = std::current_exception();
      }
    };
    const int64_t threads = std::min<int64_t>(n, std::max<int64_t>(1, std::thread::hardware_concurrency()));
    if (threads <= 1) {
      for (int64_t r = 0; r < n; ++r) write_row(r);
    } else {
      std::vector<std::thread> pool;
      for (int64_t t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          for (int64_t r = t; r < n; r += threads) write_row(r);
        });
      for (auto& thread : pool) thread.join();
    }
  }
  return out;
}

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
