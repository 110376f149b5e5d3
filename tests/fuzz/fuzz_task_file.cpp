// libFuzzer harness for the task-file reader and planner: YAML or JSON text (the first byte
// picks which) -> ParseTaskText -> PlanFromDocument-free validation of every task against the
// option tables. Anything but a UsageError (a crash, a sanitizer report, another exception, a
// run away from the limits of TaskFileLimits) is a bug. Seeds: configs/ (tools/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <string>

#include "netlens/core/errors.h"
#include "netlens/core/options.h"
#include "netlens/core/task_file.h"

namespace {

// A small table shaped like the real ones: every option type, bounds and choices.
const netlens::OptionTable& Table() {
  using netlens::OptionType;
  static const netlens::OptionTable table{
      {"model", OptionType::kString, "model", nullptr, {}, {}, {}, true, "FILE", true},
      {"image", OptionType::kStringList, "images", nullptr, {}, {}, {}, true, "FILE", true},
      {"technique", OptionType::kString, "technique"},
      {"steps", OptionType::kInt, "steps", 50, {}, 1.0, 1e6},
      {"noise", OptionType::kFloat, "noise", 0.1, {}, 0.0, 1.0},
      {"guided", OptionType::kBool, "guided", false},
      {"window", OptionType::kIntList, "window", nullptr, {}, 1.0, 1e5},
      {"mean", OptionType::kFloatList, "mean"},
      {"mode", OptionType::kString, "mode", "a", {"a", "b"}},
  };
  return table;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string name = (data[0] & 1) ? "fuzz.json" : "fuzz.yaml";
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const netlens::TaskDocument doc = netlens::ParseTaskText(text, name);
    netlens::Diagnostics diag;
    const auto locate = doc.MakeLocator();
    netlens::ValidateObject(doc.root, {&Table()}, "", locate, diag, {"tasks"});
    if (doc.root.is_object() && doc.root.contains("tasks") && doc.root["tasks"].is_array()) {
      const auto& tasks = doc.root["tasks"];
      for (size_t i = 0; i < tasks.size(); ++i)
        netlens::ValidateObject(tasks[i], {&Table()}, "tasks[" + std::to_string(i) + "]", locate, diag);
    }
    (void)diag.errors().size();
  } catch (const netlens::UsageError&) {
    // the expected answer to bad input
  }
  return 0;
}
