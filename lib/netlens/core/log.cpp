#include "netlens/core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"

namespace netlens {

spdlog::logger& Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("netlens", sink);
    l->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::info);
    return l;
  }();
  return *logger;
}

void SetLogLevel(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw UsageError("--log-level: unknown level " + Quote(level) +
                     "; valid: trace, debug, info, warn, error, off");
  Log().set_level(parsed);
}

ScopedLogFile::ScopedLogFile(const std::string& path) {
  sink_ = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/true);
  sink_->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  Log().sinks().push_back(sink_);
}

ScopedLogFile::~ScopedLogFile() {
  auto& sinks = Log().sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
}

StageTimer::StageTimer() : last_(std::chrono::steady_clock::now()) {}

double StageTimer::Stage(const std::string& name) {
  const auto now = std::chrono::steady_clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
  last_ = now;
  timings_[name] += ms;
  Log().info("{} done in {:.1f} ms", name, ms);
  return ms;
}

}  // namespace netlens
