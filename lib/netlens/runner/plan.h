// From a configuration (command-line flags or a task file) to validated jobs.
//
// A task file holds shared settings at the top (any common option: model, device, out, ...) and
// a list `tasks`; each task names its `technique` and may set any common or technique option.
// Each (task, image) pair is one job.
#pragma once

#include <string>
#include <vector>

#include "netlens/core/task_file.h"
#include "netlens/runner/runner.h"

namespace netlens {

struct Plan {
  std::vector<Job> jobs;
  std::string out_dir;
  Json config;  // the resolved configuration, for the manifest
};

// Makes the relative file paths of a task file (options declared with `path`, at the top and in
// every task) relative to `base_dir`, the file's folder, as most config-driven tools do.
void ResolveTaskPaths(Json& root, const std::string& base_dir);

// Every problem in the file is collected in `diag` (with its position) rather than thrown.
Plan PlanFromDocument(const TaskDocument& doc, Diagnostics& diag);

// For `run --dry-run`: checks what validation of the file alone cannot: that model and image
// files (and files named by a technique's path options, e.g. style's --style) exist, that
// models load, and that every `layer` option names a layer of its model.
// Problems go to `diag` with their task and position. Loads each model once (through `runner`).
void CheckResources(const Plan& plan, Runner& runner, const Locator& locate, Diagnostics& diag);

// One technique with options given as raw values (from CliBinding::Given()).
Plan PlanFromFlags(const TechniqueInfo& technique, const Json& given, Diagnostics& diag);

}  // namespace netlens
