// The option schema: every option netlens knows is declared once, as an OptionSpec, and that one
// declaration drives the command-line flags (cli_binding.h), the JSON and YAML task-file keys
// (task_file.h), the help text, the defaults and the validation messages.
//
// Keys are snake_case ("crop_pct"); flags are their kebab-case ("--crop-pct").
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace netlens {

using Json = nlohmann::json;

enum class OptionType { kString, kInt, kFloat, kBool, kStringList, kIntList, kFloatList };

const char* OptionTypeName(OptionType type);

struct OptionSpec {
  std::string key;                   // snake_case key, also the flag name in kebab-case
  OptionType type = OptionType::kString;
  std::string help;                  // one line, shown by --help and in the JSON Schema
  Json default_value;                // null: no default (the option is optional or required)
  std::vector<std::string> choices;  // allowed values of string options; empty = any
  std::optional<double> min;         // inclusive bounds of numeric options and list elements
  std::optional<double> max;
  bool required = false;
  std::string value_name = "";       // placeholder in --help ("FILE", "N"); derived if empty
  bool path = false;                 // a file or folder: relative values in a task file are
                                     // relative to the file's folder (words without / or . are kept)
};

using OptionTable = std::vector<OptionSpec>;

// Collects every problem found while validating, so that one run reports all of them.
class Diagnostics {
 public:
  void Add(const std::string& message) { errors_.push_back(message); }
  bool empty() const { return errors_.empty(); }
  const std::vector<std::string>& errors() const { return errors_; }
  // Throws UsageError with every message, one per line, if any was added.
  void ThrowIfAny() const;

 private:
  std::vector<std::string> errors_;
};

// Where a key path ("tasks[2].layer") sits in its source ("run.yaml:14:5"), or "" if unknown.
using Locator = std::function<std::string(const std::string& path)>;

// Checks `value` against `spec` and returns it in canonical form. Unambiguous conversions are
// made: a scalar where a list is expected becomes a one-element list, a comma-separated string
// a list of numbers, a numeric string (from the command line) a number. Problems go to `diag`
// as `PATH: message` with the location when known; the return value is then null.
Json CoerceOption(const OptionSpec& spec, const Json& value, const std::string& path,
                  const Locator& locate, Diagnostics& diag);

// Validates a JSON object against the union of `tables`: unknown keys (with the closest valid
// ones), wrong types, out-of-range values. Keys in `extra_keys` are accepted without checks.
// Returns the canonical values of the keys that were present.
Json ValidateObject(const Json& object, const std::vector<const OptionTable*>& tables,
                    const std::string& path, const Locator& locate, Diagnostics& diag,
                    const std::vector<std::string>& extra_keys = {});

// Validated options with typed access. A key absent from the values takes its default; asking
// for a key no table declares is an InternalError (a bug in netlens, not user input).
class Params {
 public:
  Params() = default;
  Params(std::vector<const OptionTable*> tables, Json values);

  bool Declares(const std::string& key) const;  // one of the tables has the option
  bool Has(const std::string& key) const;  // set explicitly or has a non-null default
  bool IsSet(const std::string& key) const;  // set explicitly
  std::string Str(const std::string& key) const;
  int64_t Int(const std::string& key) const;
  double Float(const std::string& key) const;
  bool Bool(const std::string& key) const;
  std::vector<std::string> Strs(const std::string& key) const;
  std::vector<int64_t> Ints(const std::string& key) const;
  std::vector<double> Floats(const std::string& key) const;

  // The options of another technique run as part of this one (gist runs integrated gradients):
  // `table` first, then this one's tables; `values` for `table`'s keys, this one's values for
  // every other key (the common options: memory limit, seed of the run).
  Params Derived(const OptionTable& table, const Json& values) const;

  // Explicit values merged over defaults: what the manifest records as the resolved config.
  Json Resolved() const;
  const Json& values() const { return values_; }

 private:
  const Json& Get(const std::string& key) const;
  const OptionSpec* Find(const std::string& key) const;  // null where no table has it
  const OptionSpec& Spec(const std::string& key) const;

  std::vector<const OptionTable*> tables_;
  Json values_ = Json::object();
};

// "text (default: 5; one of: a, b)" for --help and the schema.
std::string DescribeOption(const OptionSpec& spec);

}  // namespace netlens
