// Logging and stage timing. One spdlog logger named "netlens" writes to stderr (and to the run's
// netlens.log once a run directory exists). Library code never prints to stdout: stdout is for
// results a script may parse.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <string>

namespace netlens {

// The shared logger; created on first use with a stderr sink at level info.
spdlog::logger& Log();

// Sets the level from "trace|debug|info|warn|error|off"; throws UsageError otherwise.
void SetLogLevel(const std::string& level);

// Adds a file sink (all levels >= the logger's level) to the shared logger; returns a token that
// removes it again when destroyed.
class ScopedLogFile {
 public:
  explicit ScopedLogFile(const std::string& path);
  ~ScopedLogFile();
  ScopedLogFile(const ScopedLogFile&) = delete;
  ScopedLogFile& operator=(const ScopedLogFile&) = delete;

 private:
  std::shared_ptr<spdlog::sinks::sink> sink_;
};

// Measures named stages. Stage() logs "<name> done in X ms" at info and records the time.
class StageTimer {
 public:
  StageTimer();
  // Ends the current stage (started at construction or at the previous Stage call).
  double Stage(const std::string& name);
  const std::map<std::string, double>& timings_ms() const { return timings_; }

 private:
  std::chrono::steady_clock::time_point last_;
  std::map<std::string, double> timings_;
};

}  // namespace netlens
