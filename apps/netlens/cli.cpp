#include "apps/netlens/cli.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <map>

#include "netlens/core/cli_binding.h"
#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/core/task_file.h"
#include "netlens/core/version.h"
#include "netlens/runner/common_options.h"
#include "netlens/runner/inspect.h"
#include "netlens/runner/plan.h"
#include "netlens/techniques/registry.h"

namespace netlens {
namespace {

// The options of `inspect`: the model-related common options plus its own.
const OptionTable& InspectOptions() {
  static const OptionTable table = [] {
    OptionTable t;
    for (const auto& spec : CommonOptions())
      for (const char* key : {"model", "device", "dtype", "threads", "input_size", "channels",
                              "channel_order", "mean", "std", "labels", "log_level"})
        if (spec.key == key) t.push_back(spec);
    t.push_back({"json", OptionType::kBool, "print JSON instead of a table", false});
    t.push_back({"all", OptionType::kBool, "also list modules that cannot be captured", false});
    return t;
  }();
  return table;
}

int RunPlan(Plan plan, bool single) {
  Runner runner(plan.out_dir, plan.config);
  const int failed = runner.RunAll(plan.jobs, single);
  return failed == 0 ? kExitOk : kExitFailure;
}

int Inspect(const Json& given) {
  Diagnostics diag;
  const Json values = ValidateObject(given, {&InspectOptions()}, "", nullptr, diag);
  diag.ThrowIfAny();
  Params params({&InspectOptions()}, values);
  if (!params.IsSet("model")) throw UsageError("inspect: missing --model FILE");
  SetLogLevel(params.Str("log_level"));
  Runner runner("", Json::object());
  Params model_params({&CommonOptions()}, [&] {
    Json v = Json::object();
    for (const auto& [key, value] : values.items())
      if (key != "json" && key != "all") v[key] = value;
    return v;
  }());
  auto model = runner.GetModel(model_params);
  if (params.Bool("json")) {
    std::cout << InspectJson(*model).dump(2) << "\n";
  } else {
    std::cout << InspectTable(*model, params.Bool("all"));
  }
  return kExitOk;
}

void PrintList() {
  std::cout << "techniques (netlens <technique> --help for options):\n";
  for (const auto& t : Techniques()) {
    std::cout << "  " << t.name << std::string(t.name.size() < 18 ? 18 - t.name.size() : 1, ' ')
              << t.summary << "\n";
  }
}

}  // namespace

int RunCommandLine(int argc, char** argv) {
  CLI::App app{"netlens: what a convolutional network sees.\n"
               "  netlens <technique> --model M.pt --image I.png [options]\n"
               "  netlens run TASKS.yaml | netlens inspect --model M.pt | netlens list"};
  app.set_version_flag("--version", std::string("netlens ") + kVersion);
  app.require_subcommand(1);
  app.fallthrough(false);

  std::map<std::string, std::unique_ptr<CliBinding>> bindings;
  std::map<std::string, CLI::App*> technique_commands;
  for (const auto& technique : Techniques()) {
    CLI::App* sub = app.add_subcommand(technique.name, technique.summary);
    auto binding = std::make_unique<CliBinding>();
    binding->Bind(*sub, CommonOptions());
    binding->Bind(*sub, technique.options);
    technique_commands[technique.name] = sub;
    bindings[technique.name] = std::move(binding);
  }

  std::string task_file;
  bool dry_run = false;
  CLI::App* run = app.add_subcommand("run", "run the tasks of a JSON or YAML task file");
  run->add_option("file", task_file, "task file (.yaml, .yml or .json)")->required();
  run->add_flag("--dry-run", dry_run, "validate the file and list the jobs without running them");

  CLI::App* list = app.add_subcommand("list", "list the techniques");
  CLI::App* inspect = app.add_subcommand("inspect", "list a model's layers with their output shapes");
  CliBinding inspect_binding;
  inspect_binding.Bind(*inspect, InspectOptions());

  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names{"run", "list", "inspect"};
    for (const auto& t : Techniques()) names.push_back(t.name);
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      const std::string hint = DidYouMean(argv[1], names);
      throw UsageError("unknown command " + Quote(argv[1]) + (hint.empty() ? "" : "; " + hint) +
                       " (netlens list shows the techniques)");
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    throw UsageError(std::string(e.what()) + " (netlens --help)");
  }

  if (list->parsed()) {
    PrintList();
    return kExitOk;
  }
  if (inspect->parsed()) return Inspect(inspect_binding.Given());
  if (run->parsed()) {
    const TaskDocument doc = LoadTaskFile(task_file);
    Diagnostics diag;
    Plan plan = PlanFromDocument(doc, diag);
    diag.ThrowIfAny();
    if (dry_run) {
      std::cout << doc.path << ": valid, " << plan.jobs.size() << " job(s)\n";
      for (const auto& job : plan.jobs)
        std::cout << "  " << job.where << " " << job.technique->name << " " << job.image << " -> "
                  << job.folder << "\n";
      return kExitOk;
    }
    return RunPlan(std::move(plan), /*single=*/false);
  }
  for (const auto& [name, sub] : technique_commands) {
    if (!sub->parsed()) continue;
    Diagnostics diag;
    Plan plan = PlanFromFlags(FindTechnique(name), bindings[name]->Given(), diag);
    diag.ThrowIfAny();
    return RunPlan(std::move(plan), /*single=*/true);
  }
  throw InternalError("no subcommand ran");
}

}  // namespace netlens
