#include "netlens/runner/runner.h"
#include "netlens/core/json_text.h"

#include "netlens/model/libtorch.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "netlens/core/blas.h"
#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/core/version.h"
#include "netlens/image/image_io.h"
#include "netlens/output/files.h"
#include "netlens/runner/batch.h"
#include "netlens/runner/common_options.h"
#include "netlens/runner/job_kinds.h"

namespace netlens {
namespace fs = std::filesystem;

std::vector<int64_t> ResolveTargets(const std::vector<std::string>& specs, const Model& model,
                                    const torch::Tensor& logits) {
  const int64_t classes = logits.size(1);
  std::vector<int64_t> targets;
  for (const auto& raw : specs.empty() ? std::vector<std::string>{"top1"} : specs) {
    const std::string spec = Trim(raw);
    const std::string k_text = spec.substr(std::min<size_t>(3, spec.size()));
    if (StartsWith(ToLower(spec), "top") && !k_text.empty() &&
        k_text.find_first_not_of("0123456789") == std::string::npos) {
      const int64_t k = k_text.size() > 6 ? classes + 1 : std::stoll(k_text);
      if (k < 1 || k > classes)
        throw UsageError("target " + Quote(spec) + ": K must be 1.." + std::to_string(classes));
      const auto idx = std::get<1>(logits[0].topk(k));
      for (int64_t i = 0; i < k; ++i) targets.push_back(idx[i].item<int64_t>());
    } else {
      targets.push_back(model.ClassIndex(spec));
    }
  }
  return targets;
}

Runner::Runner(std::string out_dir, Json config, RunOptions options)
    : out_dir_(std::move(out_dir)), options_(std::move(options)) {
  manifest_ = {{"netlens_version", kVersion}, {"config", std::move(config)},
               {"jobs", Json::array()}};
}

namespace {

std::string ModelKey(const ModelRequest& request) {
  return fs::absolute(request.path).string() + "|" + request.device + "|" + request.dtype + "|" +
         SafeDump(request.overrides) + (request.smooth_activations ? "|smooth" : "");
}

}  // namespace

std::shared_ptr<Model> Runner::GetModel(const Params& params, bool many_passes) {
  const ModelRequest request = ModelRequestFrom(params);
  const std::string key = ModelKey(request);
  auto it = models_.find(key);
  if (it != models_.end()) return it->second;
  StageTimer timer;
  auto model = Model::Load(request);
  timer.Stage("load model " + fs::path(request.path).filename().string());
  auto jobs = jobs_per_model_.find(key);
  if (many_passes || (jobs != jobs_per_model_.end() && jobs->second > 1)) {
    model->SetManyPasses(true);
    Log().info("{} jobs on this model: gradients at layers run the model up to them frozen",
               many_passes ? "repeated" : std::to_string(jobs->second));
  }
  models_[key] = model;
  return model;
}

Json Runner::RunJob(const Job& job) {
  const Params& p = job.params;
  SetLogLevel(p.Str("log_level"));
  UseCpuThreads(p);
  const JobKindInfo& kind = KindOf(*job.technique);
  Log().info("job {}{}{}{}", job.where.empty() ? "" : job.where + ": ", job.technique->name,
             job.image.empty() ? "" : " on ", job.image);
  StageTimer timer;
  auto model = GetModel(p);
  JobEnv env{job, *model, out_dir_, timer.Stage("model ready")};
  Json entries = kind.run(env);
  for (auto& entry : entries)
    if (!job.where.empty()) entry["task"] = job.where;
  return entries;
}

std::string Runner::RecordPath(const Job& job) const {
  // Options that do not change the outputs (log level, threads, names of folders) stay out.
  Json options = job.params.Resolved();
  for (const char* key : {"log_level", "threads", "out", "name", "report", "batch_images"}) options.erase(key);
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
  // Counted over the whole plan, so that every shard makes the choices of a single run.
  for (const Job& job : all_jobs) {
    try {
      ++jobs_per_model_[ModelKey(ModelRequestFrom(job.params))];
    } catch (const std::exception&) {
      // The job reports its bad model options when it runs.
    }
  }
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
  if (blas.slow || blas.competing_threads) Log().warn("{}", DescribeBlas(blas));
  else if (!blas.kernels_changed.empty() || blas.narrower_kernels) Log().info("{}", DescribeBlas(blas));
  else Log().debug("{}", DescribeBlas(blas));
  manifest_["blas"] = blas.name;
  Progress progress(options_.progress, jobs.size());
  const auto start = std::chrono::steady_clock::now();
  RunSummary summary;
  // A failed job's entry, logged and counted; with `rethrow_single` and a single job, the error
  // propagates (so that the exit code says which kind).
  const auto failed = [&](const Job& job, std::exception_ptr error) {
    Json entries = Json::array();
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      ++summary.failed;
      const bool usage = dynamic_cast<const UsageError*>(&e) != nullptr;
      // LibTorch's failures inside a graph are many lines: the reason and the failing line of
      // the model's code (the whole message at debug level).
      const std::string what = usage ? std::string(e.what()) : TorchErrorSummary(e);
      if (!usage) Log().debug("{}", e.what());
      entries.push_back({{"status", "failed"}, {"technique", job.technique->name},
                         {"image", job.image}, {"task", job.where},
                         {"error", what}, {"error_kind", usage ? "usage" : "runtime"}});
      if (rethrow_single && all_jobs.size() == 1) {
        manifest_["jobs"].push_back(entries[0]);
        WriteManifest();
        throw;
      }
      Log().error("{}{}: {}", job.where.empty() ? "" : job.where + ": ", job.image, what);
    }
    return entries;
  };
  const auto finish = [&](const Json& entries, double ms) {
    for (const auto& entry : entries) manifest_["jobs"].push_back(entry);
    progress.JobDone(entries[0], ms);
  };
  const auto completed = [&](const Job& job) -> Json {
    if (!options_.skip_existing) return nullptr;
    Json done = CompletedEntries(job);
    if (done.is_null()) return nullptr;
    for (auto& entry : done) entry["skipped"] = true;
    ++summary.skipped;
    Log().info("skip {} on {}: outputs complete", job.technique->name, job.image);
    return done;
  };
  // The manifest is rewritten whole: at most once a second while jobs run (every job or batch
  // rewrote it before, which made a 10,000-job run quadratic), and at the end. Each job's own
  // completion record is written as it finishes (for --skip-existing).
  auto last_write = std::chrono::steady_clock::now() - std::chrono::seconds(2);  // the first job writes it
  const auto manifest_due = [&] {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_write < std::chrono::seconds(1)) return;
    WriteManifest();
    last_write = now;
  };
  for (size_t k = 0; k < jobs.size();) {
    const Job* job = jobs[k];
    const auto job_start = std::chrono::steady_clock::now();
    Json done = completed(*job);
    if (!done.is_null()) {
      finish(done, 0);
      manifest_due();
      ++k;
      continue;
    }
    if (Batchable(*job)) {
      // The jobs after this one that differ only in their image join its batch (those already
      // complete are skipped on the way), up to the batch's size.
      std::shared_ptr<Model> model;
      StageTimer timer;
      try {
        SetLogLevel(job->params.Str("log_level"));
        UseCpuThreads(job->params);
        model = GetModel(job->params);
      } catch (...) {
        finish(failed(*job, std::current_exception()), 0);
        manifest_due();
        ++k;
        continue;
      }
      const double load_ms = timer.Stage("model ready");
      const int64_t size = BatchImages(*job, *model);
      const std::string key = BatchKey(*job);
      std::vector<const Job*> batch{job};
      size_t next = k + 1;
      for (; next < jobs.size() && static_cast<int64_t>(batch.size()) < size; ++next) {
        if (!Batchable(*jobs[next]) || BatchKey(*jobs[next]) != key) break;
        Json skipped = completed(*jobs[next]);
        if (!skipped.is_null()) {
          finish(skipped, 0);
          continue;
        }
        batch.push_back(jobs[next]);
      }
      Log().info("job {}{} on {} image(s){}", job->where.empty() ? "" : job->where + ": ", job->technique->name,
                 batch.size(), batch.size() > 1 ? " in one batch" : ": " + job->image);
      const std::vector<BatchOutcome> outcomes = RunExplainBatch(batch, *model, out_dir_, load_ms);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - job_start).count() /
          static_cast<double>(batch.size());
      for (size_t i = 0; i < batch.size(); ++i) {
        Json entries = outcomes[i].entries;
        if (outcomes[i].error) {
          entries = failed(*batch[i], outcomes[i].error);
        } else {
          for (auto& entry : entries)
            if (!batch[i]->where.empty()) entry["task"] = batch[i]->where;
          WriteFileAtomic(RecordPath(*batch[i]), SafeDump(entries) + "\n");
          ++summary.ok;
        }
        finish(entries, ms);
      }
      manifest_due();
      k = next;
      continue;
    }
    Json entries = Json::array();
    try {
      entries = RunJob(*job);
      WriteFileAtomic(RecordPath(*job), SafeDump(entries) + "\n");
      ++summary.ok;
    } catch (...) {
      entries = failed(*job, std::current_exception());
    }
    finish(entries,
           std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - job_start).count());
    manifest_due();
    ++k;
  }
  progress.Finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Where the time went, over the jobs run here: reading images, predictions, computing, writing
  // (a batched pass counts once: each of its images carries its share).
  Json stages = {{"model", 0.0}, {"image", 0.0}, {"predict", 0.0}, {"compute", 0.0}, {"write", 0.0}};
  for (const auto& entry : manifest_["jobs"])
    if (entry.contains("timings_ms") && !entry.value("skipped", false))
      for (auto& [stage, total] : stages.items())
        total = total.get<double>() + entry["timings_ms"].value(stage, 0.0) / 1000.0;
  manifest_["summary"] = {{"ok", summary.ok}, {"failed", summary.failed}, {"skipped", summary.skipped},
                          {"seconds", seconds},
                          {"jobs_per_s", seconds > 0 ? static_cast<double>(summary.ok + summary.failed) / seconds : 0.0},
                          {"stage_seconds", stages}};
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
