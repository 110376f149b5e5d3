// Batch-run controls: deterministic shards, progress reporting, the closing summary.
#pragma once

#include <chrono>
#include <string>

#include "netlens/core/options.h"

namespace netlens {

struct Shard {
  int64_t index = 1;  // 1-based
  int64_t count = 1;
  bool Contains(size_t job_index) const { return static_cast<int64_t>(job_index % count) == index - 1; }
  std::string Suffix() const;  // "" or ".shard-2-of-4"
};

// "K/N" with 1 <= K <= N; throws UsageError otherwise.
Shard ParseShard(const std::string& text);

// Reports finished jobs: a progress bar on stderr (when it is a terminal, or mode "bar"), one JSON
// line per job on stdout (mode "json"), or nothing ("none"; "auto" picks bar or none).
class Progress {
 public:
  Progress(std::string mode, size_t total);
  void JobDone(const Json& entry, double elapsed_ms);
  void Finish();

 private:
  std::string mode_;
  size_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// The closing table: jobs ok / failed / skipped and time, on stderr.
void PrintSummary(size_t ok, size_t failed, size_t skipped, double seconds, const std::string& out_dir);

}  // namespace netlens
