// Reads a task file (JSON or YAML; YAML is read into the same JSON value so there is one decoding
// path) and remembers where every key stands, so that validation messages can say
// "run.yaml:14:5".
#pragma once

#include <map>
#include <string>

#include "netlens/core/options.h"

namespace netlens {

// What a task file may hold, so that hostile files (self-referencing aliases, "billion laughs",
// 100,000 nested brackets, gigabytes) end in a UsageError with bounded time and memory.
// Documented in docs/batch.md.
struct TaskFileLimits {
  static constexpr size_t kMaxBytes = 16u << 20;   // file size
  static constexpr size_t kMaxDepth = 64;          // nesting of lists and mappings
  static constexpr size_t kMaxValues = 200000;     // values after alias expansion
};

struct TaskDocument {
  std::string path;
  Json root;
  std::map<std::string, std::string> locations;  // "tasks[2].layer" -> "run.yaml:14:5"

  std::string Locate(const std::string& key_path) const;
  Locator MakeLocator() const;
};

// Throws UsageError for a missing file, an unknown extension or a syntax error (with position).
TaskDocument LoadTaskFile(const std::string& path);

// Parses YAML (or JSON) text; `name` is used in messages and locations.
TaskDocument ParseTaskText(const std::string& text, const std::string& name);

}  // namespace netlens
