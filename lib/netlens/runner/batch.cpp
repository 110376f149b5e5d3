#include "netlens/runner/batch.h"
#include "netlens/core/json_text.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"

namespace netlens {

std::string Shard::Suffix() const {
  return count == 1 ? "" : ".shard-" + std::to_string(index) + "-of-" + std::to_string(count);
}

Shard ParseShard(const std::string& text) {
  const auto parts = Split(text, '/');
  auto number = [](const std::string& s) -> int64_t {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return -1;
    return std::stoll(s);
  };
  Shard shard;
  if (parts.size() == 2) {
    shard.index = number(parts[0]);
    shard.count = number(parts[1]);
  }
  if (parts.size() != 2 || shard.count < 1 || shard.index < 1 || shard.index > shard.count)
    throw UsageError("--shard " + Quote(text) + ": use K/N with 1 <= K <= N (e.g. 2/4)");
  return shard;
}

Progress::Progress(std::string mode, size_t total)
    : mode_(std::move(mode)), total_(total), start_(std::chrono::steady_clock::now()) {
  if (mode_ == "auto") mode_ = ::isatty(2) ? "bar" : "none";
}

void Progress::JobDone(const Json& entry, double elapsed_ms) {
  ++done_;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = seconds > 0 ? done_ / seconds : 0;
  if (mode_ == "json") {
    Json line{{"done", done_}, {"total", total_}, {"status", entry.value("status", "ok")},
              {"technique", entry.value("technique", "")}, {"image", entry.value("image", "")},
              {"elapsed_ms", elapsed_ms}, {"rate_per_s", rate},
              {"eta_s", rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0}};
    if (entry.contains("task")) line["task"] = entry["task"];
    if (entry.contains("error")) line["error"] = entry["error"];
    std::cout << SafeDump(line) << std::endl;
  } else if (mode_ == "bar") {
    const int width = 30;
    const int filled = total_ ? static_cast<int>(width * done_ / total_) : width;
    const double eta = rate > 0 ? (total_ - done_) / rate : 0;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu jobs  %.2f jobs/s  ETA %d:%02d ", std::string(filled, '=').c_str(),
                 std::string(width - filled, ' ').c_str(), done_, total_, rate,
                 static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    std::fflush(stderr);
  }
}

void Progress::Finish() {
  if (mode_ == "bar") std::fprintf(stderr, "\n");
}

void PrintSummary(size_t ok, size_t failed, size_t skipped, double seconds, const std::string& out_dir) {
  std::fprintf(stderr,
               "\n+----------+--------+----------+-----------+----------+\n"
               "| jobs     | ok     | failed   | skipped   | time     |\n"
               "+----------+--------+----------+-----------+----------+\n"
               "| %-8zu | %-6zu | %-8zu | %-9zu | %7.1fs |\n"
               "+----------+--------+----------+-----------+----------+\n"
               "outputs in %s\n",
               ok + failed + skipped, ok, failed, skipped, seconds, out_dir.c_str());
}

}  // namespace netlens
