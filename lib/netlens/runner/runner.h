// Runs jobs: (technique, options, one image). Loads each model once per process (cached by path,
// device, dtype and metadata overrides), writes raw arrays and pictures atomically, logs every
// stage with its time, and records everything in <out>/manifest.json.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "netlens/core/options.h"
#include "netlens/model/model.h"
#include "netlens/techniques/technique.h"

namespace netlens {

struct Job {
  const TechniqueInfo* technique = nullptr;
  Params params;           // common + technique options, validated
  std::string image;       // one image path
  std::string folder;      // where its files go (the run folder or a task subfolder)
  std::string where;       // for messages: "tasks[2]" or "" on the command line
};

// Target strings ("281", "tiger cat", "top3") -> class indices. Without any: the top-1 class.
std::vector<int64_t> ResolveTargets(const std::vector<std::string>& specs, const Model& model,
                                    const torch::Tensor& logits);

// How a batch runs: which shard of the jobs, whether finished jobs are skipped, progress.
struct RunOptions {
  int64_t shard_index = 1;      // 1-based; jobs i with i % shard_count == shard_index - 1
  int64_t shard_count = 1;
  bool skip_existing = false;   // skip jobs whose completion record and outputs all exist
  std::string progress = "none";  // auto | bar | json | none
  bool summary = false;         // print the closing table
};

struct RunSummary {
  size_t ok = 0, failed = 0, skipped = 0;
};

class Runner {
 public:
  // `out_dir`: the run folder; `config`: the resolved configuration recorded in the manifest.
  Runner(std::string out_dir, Json config, RunOptions options = {});

  // Runs every job of this shard; a failing job is logged and recorded, and the others go on.
  // With `rethrow_single` and exactly one job, its error propagates (so the exit code says which
  // kind). Writes <out>/manifest.json (manifest.shard-K-of-N.json for a shard).
  RunSummary RunAll(const std::vector<Job>& jobs, bool rethrow_single);

  // The model of a job's parameters, loaded once. With `many_passes` (or when the plan has
  // several jobs on it) gradients at layers run the model up to them frozen (Model::SetManyPasses).
  std::shared_ptr<Model> GetModel(const Params& params, bool many_passes = false);

 private:
  Json RunJob(const Job& job);
  void WriteManifest() const;
  // Completion record of a job: <folder>/.netlens/<image>.<technique>.<options hash>.json.
  std::string RecordPath(const Job& job) const;
  // The recorded entries when the job is complete (record and every output present), else null.
  Json CompletedEntries(const Job& job) const;

  std::string out_dir_;
  RunOptions options_;
  Json manifest_;
  std::string manifest_name_ = "manifest.json";
  std::map<std::string, std::shared_ptr<Model>> models_;
  std::map<std::string, int64_t> jobs_per_model_;  // over the whole plan, all shards
};

}  // namespace netlens
