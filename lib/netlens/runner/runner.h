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

class Runner {
 public:
  // `out_dir`: the run folder; `config`: the resolved configuration recorded in the manifest.
  Runner(std::string out_dir, Json config);

  // Runs every job; a failing job is logged and recorded, and the others go on. With
  // `rethrow_single` and exactly one job, its error propagates (so the exit code says which
  // kind). Returns the number of failed jobs.
  int RunAll(const std::vector<Job>& jobs, bool rethrow_single);

  std::shared_ptr<Model> GetModel(const Params& params);

 private:
  Json RunJob(const Job& job);
  void WriteManifest() const;

  std::string out_dir_;
  Json manifest_;
  std::map<std::string, std::shared_ptr<Model>> models_;
};

}  // namespace netlens
