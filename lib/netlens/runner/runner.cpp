#include "netlens/runner/runner.h"
#include "netlens/core/json_text.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "netlens/core/blas.h"
#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/core/version.h"
#include "netlens/image/image_io.h"
#include "netlens/output/files.h"
#include "netlens/runner/batch.h"
#include "netlens/runner/common_options.h"
#include "netlens/runner/write_artifacts.h"

namespace netlens {
namespace fs = std::filesystem;

namespace {

bool IsInteger(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

int64_t LabelIndex(const std::string& spec, const Model& model) {
  const auto& labels = model.meta().labels;
  const std::string want = ToLower(Trim(spec));
  std::vector<int64_t> exact, prefix;
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string label = ToLower(labels[i]);
    // A label "tabby, tabby cat" also answers to each of its comma-separated names.
    bool is_exact = label == want, is_prefix = StartsWith(label, want);
    for (const auto& part : Split(label, ',')) {
      is_exact = is_exact || Trim(part) == want;
      is_prefix = is_prefix || StartsWith(Trim(part), want);
    }
    if (is_exact) exact.push_back(static_cast<int64_t>(i));
    if (is_prefix) prefix.push_back(static_cast<int64_t>(i));
  }
  if (exact.size() == 1) return exact[0];
  if (exact.empty() && prefix.size() == 1) return prefix[0];
  if (labels.empty())
    throw UsageError("target " + Quote(spec) + ": the model has no labels; give a class index "
                     "or --labels FILE");
  const auto& matches = exact.empty() ? prefix : exact;
  if (matches.size() > 1) {
    std::vector<std::string> names;
    for (auto i : matches) names.push_back(labels[i] + " (" + std::to_string(i) + ")");
    names.resize(std::min<size_t>(names.size(), 5));
    throw UsageError("target " + Quote(spec) + " is ambiguous: " + Join(names, "; "));
  }
  std::string msg = "target " + Quote(spec) + ": no class has that label";
  const std::string hint = DidYouMean(spec, labels);
  throw UsageError(hint.empty() ? msg : msg + "; " + hint);
}

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

}  // namespace

std::vector<int64_t> ResolveTargets(const std::vector<std::string>& specs, const Model& model,
                                    const torch::Tensor& logits) {
  const int64_t classes = logits.size(1);
  std::vector<int64_t> targets;
  for (const auto& raw : specs.empty() ? std::vector<std::string>{"top1"} : specs) {
    const std::string spec = Trim(raw);
    if (StartsWith(ToLower(spec), "top") && IsInteger(spec.substr(3))) {
      const int64_t k = std::stoll(spec.substr(3));
      if (k < 1 || k > classes)
        throw UsageError("target " + Quote(spec) + ": K must be 1.." + std::to_string(classes));
      const auto idx = std::get<1>(logits[0].topk(k));
      for (int64_t i = 0; i < k; ++i) targets.push_back(idx[i].item<int64_t>());
    } else if (IsInteger(spec) || (spec.size() > 1 && spec[0] == '-' && IsInteger(spec.substr(1)))) {
      const int64_t t = std::stoll(spec);
      if (t < 0 || t >= classes)
        throw UsageError("target " + spec + " is out of range: the model has " +
                         std::to_string(classes) + " classes (0.." + std::to_string(classes - 1) + ")");
      targets.push_back(t);
    } else {
      targets.push_back(LabelIndex(spec, model));
    }
  }
  return targets;
}

Runner::Runner(std::string out_dir, Json config, RunOptions options)
    : out_dir_(std::move(out_dir)), options_(std::move(options)) {
  manifest_ = {{"netlens_version", kVersion}, {"config", std::move(config)},
               {"jobs", Json::array()}};
}

std::shared_ptr<Model> Runner::GetModel(const Params& params) {
  const ModelRequest request = ModelRequestFrom(params);
  const std::string key = fs::absolute(request.path).string() + "|" + request.device + "|" +
                          request.dtype + "|" + SafeDump(request.overrides);
  auto it = models_.find(key);
  if (it != models_.end()) return it->second;
  StageTimer timer;
  auto model = Model::Load(request);
  timer.Stage("load model " + fs::path(request.path).filename().string());
  models_[key] = model;
  return model;
}

Json Runner::RunJob(const Job& job) {
  const Params& p = job.params;
  SetLogLevel(p.Str("log_level"));
  const int64_t threads = p.Int("threads") > 0 ? p.Int("threads")
                                               : std::max(1u, std::thread::hardware_concurrency());
  if (torch::get_num_threads() != threads) {
    torch::set_num_threads(static_cast<int>(threads));
    Log().debug("using {} CPU threads", threads);
  }
  Log().info("job {}{} on {}", job.where.empty() ? "" : job.where + ": ", job.technique->name,
             job.image);
  StageTimer timer;
  auto model = GetModel(p);
  const double load_ms = timer.Stage("model ready");
  InputLimits limits;
  limits.budget = ParseMemoryBudget(p.Str("memory_limit"), model->device());
  if (p.IsSet("max_pixels")) limits.max_pixels = p.Int("max_pixels");
  const InputImage input = PrepareInput(job.image, *model, ParseResizePolicy(p.Str("resize")), limits);
  CheckBatchMemory(*job.technique, p, *model, input, limits.budget);
  const double image_ms = timer.Stage("read and preprocess image");
  const torch::Tensor logits = model->Logits(input.tensor);
  if (!torch::isfinite(logits.to(torch::kFloat64)).all().item<bool>())
    throw RuntimeError("the model's output for " + job.image + " is not finite (NaN or Inf in " +
                       std::to_string(logits.size(1)) + " logits); nothing to explain");
  const torch::Tensor probs = torch::softmax(logits.to(torch::kFloat64), 1)[0].cpu();
  const Json predictions = Predictions(*model, probs, 5);
  const auto targets = ResolveTargets(p.IsSet("target") ? p.Strs("target") : std::vector<std::string>{},
                                      *model, logits);
  const double predict_ms = timer.Stage("predict");
  Log().info("top-1: {} ({}) p={:.3f}", predictions[0]["label"].get<std::string>(),
             predictions[0]["index"].get<int64_t>(), predictions[0]["probability"].get<double>());

  Json entries = Json::array();
  const std::string& folder = job.folder;
  for (const int64_t target : targets) {
    const std::string label = model->Label(target);
    Log().info("target: {} ({}), logit {:.4f}", label, target, logits[0][target].item<double>());
    TechniqueContext ctx{*model, input, target, p};
    StageTimer tt;
    const std::vector<Artifact> artifacts = job.technique->run(ctx);
    const double compute_ms = tt.Stage(job.technique->name);
    std::string base = fs::path(job.image).stem().string();
    if (targets.size() > 1) base += "_t" + std::to_string(target);
    const Json outputs = WriteArtifacts(artifacts, input, folder, base, out_dir_,
                                        p.Float("outlier_percent"));
    const double write_ms = tt.Stage("write outputs");
    entries.push_back({
        {"status", "ok"},
        {"technique", job.technique->name},
        {"image", job.image},
        {"target", {{"index", target}, {"label", label}, {"score", logits[0][target].item<double>()},
                    {"probability", probs[target].item<double>()}}},
        {"predictions", predictions},
        {"outputs", outputs},
        {"model", {{"path", model->path()}, {"name", model->meta().name},
                   {"layers", model->lens().layers().size()},
                   {"metadata_source", model->meta().source},
                   {"labels_source", model->meta().labels_source},
                   {"input", {model->meta().channels, model->meta().height, model->meta().width}},
                   {"dtype", p.Str("dtype")}}},
        {"device", model->device().str()},
        {"options", p.Resolved()},
        {"timings_ms", {{"model", load_ms}, {"image", image_ms}, {"predict", predict_ms},
                        {"compute", compute_ms}, {"write", write_ms}}},
    });
    if (!job.where.empty()) entries.back()["task"] = job.where;
    if (!ctx.metrics.empty()) entries.back()["metrics"] = ctx.metrics;
  }
  return entries;
}

std::string Runner::RecordPath(const Job& job) const {
  // Options that do not change the outputs (log level, threads, names of folders) stay out.
  Json options = job.params.Resolved();
  for (const char* key : {"log_level", "threads", "out", "name"}) options.erase(key);
  const std::string key = job.technique->name + "|" + job.image + "|" + SafeDump(options);
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016zx", std::hash<std::string>{}(key));
  return (fs::path(job.folder) / ".netlens" /
          (fs::path(job.image).stem().string() + "." + job.technique->name + "." + hash + ".json"))
      .string();
}

Json Runner::CompletedEntries(const Job& job) const {
  std::ifstream in(RecordPath(job));
  if (!in) return nullptr;
  Json entries;
  try {
    entries = Json::parse(in);
  } catch (const Json::parse_error&) {
    return nullptr;
  }
  for (const auto& entry : entries)
    for (const auto& output : entry.value("outputs", Json::array()))
      if (!fs::exists(fs::path(out_dir_) / output["path"].get<std::string>())) return nullptr;
  return entries;
}

RunSummary Runner::RunAll(const std::vector<Job>& all_jobs, bool rethrow_single) {
  const Shard shard{options_.shard_index, options_.shard_count};
  std::vector<const Job*> jobs;
  for (size_t i = 0; i < all_jobs.size(); ++i)
    if (shard.Contains(i)) jobs.push_back(&all_jobs[i]);
  MakeDirs(out_dir_);
  manifest_name_ = "manifest" + shard.Suffix() + ".json";
  if (shard.count > 1) manifest_["shard"] = {{"index", shard.index}, {"count", shard.count}, {"jobs", jobs.size()}};
  ScopedLogFile log_file((fs::path(out_dir_) / ("netlens" + shard.Suffix() + ".log")).string());
  if (shard.count > 1)
    Log().info("shard {}/{}: {} of {} jobs", shard.index, shard.count, jobs.size(), all_jobs.size());
  const BlasInfo blas = DetectBlas();
  if (blas.slow) Log().warn("{}", DescribeBlas(blas));
  else Log().debug("{}", DescribeBlas(blas));
  manifest_["blas"] = blas.name;
  Progress progress(options_.progress, jobs.size());
  const auto start = std::chrono::steady_clock::now();
  RunSummary summary;
  for (const Job* job : jobs) {
    const auto job_start = std::chrono::steady_clock::now();
    Json entries = Json::array();
    if (options_.skip_existing) {
      Json done = CompletedEntries(*job);
      if (!done.is_null()) {
        for (auto& entry : done) entry["skipped"] = true;
        entries = done;
        ++summary.skipped;
        Log().info("skip {} on {}: outputs complete", job->technique->name, job->image);
      }
    }
    if (entries.empty()) {
      try {
        entries = RunJob(*job);
        WriteFileAtomic(RecordPath(*job), SafeDump(entries) + "\n");
        ++summary.ok;
      } catch (const std::exception& e) {
        ++summary.failed;
        const bool usage = dynamic_cast<const UsageError*>(&e) != nullptr;
        entries.push_back({{"status", "failed"}, {"technique", job->technique->name},
                           {"image", job->image}, {"task", job->where},
                           {"error", e.what()}, {"error_kind", usage ? "usage" : "runtime"}});
        if (rethrow_single && all_jobs.size() == 1) {
          manifest_["jobs"].push_back(entries[0]);
          WriteManifest();
          throw;
        }
        Log().error("{}{}: {}", job->where.empty() ? "" : job->where + ": ", job->image, e.what());
      }
    }
    for (const auto& entry : entries) manifest_["jobs"].push_back(entry);
    WriteManifest();
    progress.JobDone(entries[0], std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - job_start).count());
  }
  progress.Finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  manifest_["summary"] = {{"ok", summary.ok}, {"failed", summary.failed}, {"skipped", summary.skipped},
                          {"seconds", seconds}};
  WriteManifest();
  Log().info("{} job(s): {} ok, {} failed, {} skipped; outputs in {}", jobs.size(), summary.ok,
             summary.failed, summary.skipped, out_dir_);
  if (options_.summary) PrintSummary(summary.ok, summary.failed, summary.skipped, seconds, out_dir_);
  return summary;
}

void Runner::WriteManifest() const {
  WriteFileAtomic((fs::path(out_dir_) / manifest_name_).string(), SafeDump(manifest_, 2) + "\n");
}

}  // namespace netlens
