// report.html: one self-contained page of every result in an output folder, built from its
// manifest (manifest.json, or the shards' manifest.shard-K-of-N.json merged). An index of the
// inputs on the left (with failed jobs marked, a filter box); per input: the picture, the
// predictions, a tab per job (technique and target), and per result its views; results computed
// at several layers get a slider, prev/next buttons and the arrow keys to flip through the
// layers in forward order. The step log and links to the raw .npy files close the page. Pictures
// are embedded (data: URIs) up to a size limit and linked by relative path above it, so that a
// 1,000-job batch still opens fast; the page loads nothing from the network.
#pragma once

#include <cstdint>
#include <string>

namespace netlens {

struct ReportOptions {
  std::string embed = "auto";              // auto | always | never
  int64_t embed_limit_bytes = 48 << 20;    // auto: embed when the pictures sum to less
};

struct ReportInfo {
  std::string path;           // the report file
  size_t jobs = 0, failed = 0, sections = 0, pictures = 0;
  bool embedded = false;
};

// Throws UsageError when `dir` has no manifest (naming the remedy) or an unreadable one.
ReportInfo WriteReport(const std::string& dir, const ReportOptions& options = {});

}  // namespace netlens
