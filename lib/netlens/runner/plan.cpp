#include "netlens/runner/plan.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "netlens/core/strings.h"
#include "netlens/runner/common_options.h"
#include "netlens/runner/from_run.h"
#include "netlens/runner/images.h"
#include "netlens/runner/job_kinds.h"
#include "netlens/techniques/registry.h"

namespace netlens {
namespace fs = std::filesystem;

namespace {

std::string Where(const std::string& path, const Locator& locate) {
  const std::string loc = locate ? locate(path) : "";
  return loc.empty() ? path : path + " (" + loc + ")";
}

// Adds the jobs of one task: `values` are validated options (defaults merged in).
void AddJobs(const TechniqueInfo& technique, const Json& values, const std::string& where,
             const std::string& folder, const Locator& locate, Diagnostics& diag, Plan& plan) {
  Params params({&CommonOptions(), &technique.options}, values);
  // A technique that reads its jobs from an earlier run (evaluate --from DIR).
  const bool reads_runs = std::any_of(technique.options.begin(), technique.options.end(),
                                      [](const OptionSpec& spec) { return spec.key == "from"; });
  if (reads_runs && params.IsSet("from")) {
    if (params.IsSet("image"))
      diag.Add(Where(where.empty() ? "--image" : where + ".image", locate) + ": " + technique.name +
               " --from takes its images from the run's manifest; remove `image`");
    std::vector<std::string> problems;
    std::vector<Job> jobs = JobsFromRun(technique, values, folder, where, problems);
    for (const auto& problem : problems) diag.Add(Where(where.empty() ? "--from" : where + ".from", locate) + ": " + problem);
    for (auto& job : jobs) plan.jobs.push_back(std::move(job));
    return;
  }
  bool complete = true;
  for (const auto* table : {&CommonOptions(), &technique.options})
    for (const auto& spec : *table)
      if (spec.required && !params.IsSet(spec.key)) {
        diag.Add(Where(where.empty() ? "--" + KebabCase(spec.key) : where, locate) +
                 ": missing required option " + Quote(spec.key) + " (--" + KebabCase(spec.key) +
                 ")");
        complete = false;
      }
  const JobKindInfo& kind = KindOf(technique);
  const std::string image_key = Where(where.empty() ? "--image" : where + ".image", locate);
  if (kind.images == 0 && params.IsSet("image")) {
    diag.Add(image_key + ": " + technique.name + " takes no image (" + kind.no_image + "); remove `image`");
    complete = false;
  } else if (kind.images > 0 && !params.IsSet("image")) {
    diag.Add(image_key + ": missing required option \"image\" (--image)");
    complete = false;
  }
  if (!complete) return;
  std::vector<std::string> problems;
  const auto images = kind.images == 0 ? std::vector<std::string>{""}
                                       : ExpandImages(params.Strs("image"), problems);
  for (const auto& problem : problems)
    diag.Add(Where(where.empty() ? "--image" : where + ".image", locate) + ": " + problem);
  for (const auto& image : images) {
    Job job;
    job.technique = &technique;
    job.params = params;
    job.image = image;
    job.folder = folder;
    job.where = where;
    plan.jobs.push_back(std::move(job));
  }
}

enum class PathKind { kNone, kPath, kPathOrKeyword };

// Common options that are paths always are; a technique's path option may also take keywords
// (`baseline: blur`), so there a word without / or . is kept as it is.
PathKind PathOption(const std::string& key, const std::string& technique) {
  for (const auto& spec : CommonOptions())
    if (spec.key == key) return spec.path ? PathKind::kPath : PathKind::kNone;
  for (const auto& t : Techniques())
    if (technique.empty() || t.name == technique)
      for (const auto& spec : t.options)
        if (spec.key == key && spec.path) return PathKind::kPathOrKeyword;
  return PathKind::kNone;
}

Json ResolvePathValue(const Json& value, const fs::path& base, PathKind kind) {
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& v : value) out.push_back(ResolvePathValue(v, base, kind));
    return out;
  }
  if (!value.is_string()) return value;
  const std::string s = value.get<std::string>();
  if (s.empty() || fs::path(s).is_absolute()) return value;
  if (kind == PathKind::kPathOrKeyword && s.find_first_of("/.") == std::string::npos) return value;
  return (base / s).lexically_normal().string();
}

void ResolveObjectPaths(Json& object, const fs::path& base, const std::string& technique) {
  if (!object.is_object()) return;
  for (auto& [key, value] : object.items()) {
    const PathKind kind = PathOption(key, technique);
    if (kind != PathKind::kNone) value = ResolvePathValue(value, base, kind);
  }
}

}  // namespace

void ResolveTaskPaths(Json& root, const std::string& base_dir) {
  if (!root.is_object() || base_dir.empty()) return;
  const fs::path base(base_dir);
  ResolveObjectPaths(root, base, "");
  auto tasks = root.find("tasks");
  if (tasks == root.end() || !tasks->is_array()) return;
  for (auto& task : *tasks) {
    if (!task.is_object()) continue;
    const auto t = task.find("technique");
    ResolveObjectPaths(task, base, t != task.end() && t->is_string() ? t->get<std::string>() : "");
  }
}

void CheckResources(const Plan& plan, Runner& runner, const Locator& locate, Diagnostics& diag) {
  std::set<std::string> reported;
  for (const auto& job : plan.jobs) {
    const std::string where = job.where.empty() ? "" : job.where + ".";
    auto add = [&](const std::string& key, const std::string& message) {
      const std::string line = Where(where + key, locate) + ": " + message;
      if (reported.insert(line).second) diag.Add(line);
    };
    if (!job.image.empty() && !fs::is_regular_file(job.image)) add("image", "image " + Quote(job.image) + " not found");
    // Files named by the technique's own path options (style's --content and --style, a
    // baseline image); a word without / or . is a keyword (`baseline: blur`).
    for (const auto& spec : job.technique->options) {
      if (!spec.path || !job.params.IsSet(spec.key)) continue;
      const auto values = spec.type == OptionType::kStringList ? job.params.Strs(spec.key)
                                                               : std::vector<std::string>{job.params.Str(spec.key)};
      for (const auto& v : values)
        if (v.find_first_of("/.") != std::string::npos && !fs::exists(v))
          add(spec.key, spec.key + " " + Quote(v) + " not found");
    }
    std::shared_ptr<Model> model;
    try {
      model = runner.GetModel(job.params);
    } catch (const std::exception& e) {
      add("model", e.what());
      continue;
    }
    for (const auto& spec : job.technique->options) {
      if (spec.key != "layer" || !job.params.Has("layer")) continue;
      const auto names = spec.type == OptionType::kString ? std::vector<std::string>{job.params.Str("layer")}
                                                          : job.params.Strs("layer");
      for (const auto& name : names) {
        try {
          model->lens().Resolve(name);
        } catch (const std::exception& e) {
          add("layer", e.what());
        }
      }
    }
  }
}

Plan PlanFromFlags(const TechniqueInfo& technique, const Json& given, Diagnostics& diag) {
  Plan plan;
  const Json values = ValidateObject(given, {&CommonOptions(), &technique.options}, "", nullptr, diag);
  Params params({&CommonOptions(), &technique.options}, values);
  plan.out_dir = params.Str("out");
  plan.config = {{"technique", technique.name}, {"options", params.Resolved()}};
  AddJobs(technique, values, "", plan.out_dir, nullptr, diag, plan);
  return plan;
}

Plan PlanFromDocument(const TaskDocument& doc, Diagnostics& diag) {
  Plan plan;
  const Locator locate = doc.MakeLocator();
  const Json shared = ValidateObject(doc.root, {&CommonOptions()}, "", locate, diag, {"tasks"});
  Params shared_params({&CommonOptions()}, shared);
  plan.out_dir = shared_params.Str("out");
  plan.config = {{"task_file", doc.path}, {"shared", shared_params.Resolved()},
                 {"tasks", Json::array()}};
  if (!doc.root.is_object()) return plan;
  const auto tasks_it = doc.root.find("tasks");
  if (tasks_it == doc.root.end() || !tasks_it->is_array() || tasks_it->empty()) {
    diag.Add(Where("tasks", locate) + ": a task file needs a non-empty list `tasks`, each with a "
             "`technique` (netlens list shows them)");
    return plan;
  }
  const Json& tasks = *tasks_it;
  std::set<std::string> folders;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const std::string where = "tasks[" + std::to_string(i) + "]";
    const Json& task = tasks[i];
    if (!task.is_object() || !task.contains("technique") || !task["technique"].is_string()) {
      diag.Add(Where(where, locate) + ": each task needs `technique: NAME`");
      continue;
    }
    const TechniqueInfo* technique = nullptr;
    try {
      technique = &FindTechnique(task["technique"].get<std::string>());
    } catch (const std::exception& e) {
      diag.Add(Where(where + ".technique", locate) + ": " + e.what());
      continue;
    }
    Json values = shared;
    const Json own = ValidateObject(task, {&CommonOptions(), &technique->options}, where, locate,
                                    diag, {"technique"});
    for (const auto& [key, value] : own.items()) values[key] = value;
    Params params({&CommonOptions(), &technique->options}, values);
    std::string name = params.IsSet("name") ? params.Str("name")
                                            : (i < 10 ? "0" : "") + std::to_string(i) + "-" + technique->name;
    if (!folders.insert(name).second)
      diag.Add(Where(where + ".name", locate) + ": two tasks are named " + Quote(name));
    std::string folder = (fs::path(plan.out_dir) / name).string();
    if (own.contains("out")) folder = own["out"].get<std::string>();
    Json recorded = params.Resolved();
    recorded["technique"] = technique->name;
    plan.config["tasks"].push_back(recorded);
    AddJobs(*technique, values, where, folder, locate, diag, plan);
  }
  return plan;
}

}  // namespace netlens
