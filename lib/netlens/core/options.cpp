#include "netlens/core/options.h"
#include "netlens/core/json_text.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"

namespace netlens {
namespace {

bool IsList(OptionType type) {
  return type == OptionType::kStringList || type == OptionType::kIntList ||
         type == OptionType::kFloatList;
}

OptionType ElementType(OptionType type) {
  switch (type) {
    case OptionType::kStringList: return OptionType::kString;
    case OptionType::kIntList: return OptionType::kInt;
    case OptionType::kFloatList: return OptionType::kFloat;
    default: return type;
  }
}

std::string Where(const std::string& path, const Locator& locate) {
  const std::string loc = locate ? locate(path) : "";
  return loc.empty() ? path : path + " (" + loc + ")";
}

std::optional<double> ParseNumber(const std::string& text) {
  const std::string t = Trim(text);
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Coerces one scalar; returns null and sets `problem` on failure.
Json CoerceScalar(OptionType type, const Json& v, std::string& problem) {
  switch (type) {
    case OptionType::kString:
      if (v.is_string()) return v;
      if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
      if (v.is_number()) return SafeDump(v);
      problem = "expected a string, got " + Brief(v);
      return nullptr;
    case OptionType::kBool:
      if (v.is_boolean()) return v;
      if (v.is_string()) {
        const std::string s = ToLower(Trim(v.get<std::string>()));
        if (s == "true" || s == "1" || s == "yes" || s == "on") return true;
        if (s == "false" || s == "0" || s == "no" || s == "off") return false;
      }
      problem = "expected true or false, got " + Brief(v);
      return nullptr;
    case OptionType::kInt:
    case OptionType::kFloat: {
      std::optional<double> num;
      if (v.is_number()) num = v.get<double>();
      if (v.is_string()) num = ParseNumber(v.get<std::string>());
      const char* what = type == OptionType::kInt ? "an integer" : "a number";
      if (!num) {
        problem = std::string("expected ") + what + ", got " + Brief(v);
        return nullptr;
      }
      if (type == OptionType::kFloat) return *num;
      if (std::floor(*num) != *num) {
        problem = "expected an integer, got " + Brief(v);
        return nullptr;
      }
      // Beyond 2^63 the conversion is undefined; no option takes such a number.
      if (!(std::fabs(*num) < 9.2e18)) {
        problem = "integer " + Brief(v) + " is out of range";
        return nullptr;
      }
      return static_cast<int64_t>(*num);
    }
    default:
      throw InternalError("CoerceScalar: list type passed as scalar");
  }
}

}  // namespace

std::string SafeDump(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

std::string Brief(const Json& value, size_t max_chars) {
  std::string text = SafeDump(value);
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

const char* OptionTypeName(OptionType type) {
  switch (type) {
    case OptionType::kString: return "string";
    case OptionType::kInt: return "integer";
    case OptionType::kFloat: return "number";
    case OptionType::kBool: return "boolean";
    case OptionType::kStringList: return "list of strings";
    case OptionType::kIntList: return "list of integers";
    case OptionType::kFloatList: return "list of numbers";
  }
  return "?";
}

void Diagnostics::ThrowIfAny() const {
  if (errors_.empty()) return;
  throw UsageError(Join(errors_, "\n"));
}

Json CoerceOption(const OptionSpec& spec, const Json& value, const std::string& path,
                  const Locator& locate, Diagnostics& diag) {
  const OptionType elem_type = ElementType(spec.type);
  std::vector<Json> items;
  if (IsList(spec.type)) {
    // Lists may be written as a list, one scalar, or comma-separated text ("a,b" or ["a,b"]).
    const Json all = value.is_array() ? value : Json::array({value});
    for (const auto& item : all) {
      if (!item.is_string()) {
        items.push_back(item);
        continue;
      }
      for (const auto& part : Split(item.get<std::string>(), ','))
        if (!Trim(part).empty()) items.emplace_back(Trim(part));
    }
    if (items.empty()) {
      diag.Add(Where(path, locate) + ": expected a " + OptionTypeName(spec.type) + ", got " +
               Brief(value));
      return nullptr;
    }
  } else {
    if (value.is_array() || value.is_object()) {
      diag.Add(Where(path, locate) + ": expected a single " + OptionTypeName(spec.type) +
               ", got " + Brief(value));
      return nullptr;
    }
    items.push_back(value);
  }

  Json out = Json::array();
  for (const auto& item : items) {
    std::string problem;
    Json v = CoerceScalar(elem_type, item, problem);
    if (v.is_null()) {
      diag.Add(Where(path, locate) + ": " + problem);
      return nullptr;
    }
    if (!spec.choices.empty()) {
      const std::string s = v.get<std::string>();
      bool ok = false;
      for (const auto& c : spec.choices) ok = ok || c == s;
      if (!ok) {
        std::string msg = Where(path, locate) + ": invalid value " + Quote(s) + "; valid: " +
                          Join(spec.choices, ", ");
        const std::string hint = DidYouMean(s, spec.choices);
        diag.Add(hint.empty() ? msg : msg + "; " + hint);
        return nullptr;
      }
    }
    if (v.is_number()) {
      const double d = v.get<double>();
      if ((spec.min && d < *spec.min) || (spec.max && d > *spec.max)) {
        auto bound = [](const std::optional<double>& b, const char* none) {
          if (!b) return std::string(none);
          return std::floor(*b) == *b ? std::to_string(static_cast<int64_t>(*b)) : SafeDump(Json(*b));
        };
        const std::string range = "[" + bound(spec.min, "-inf") + ", " + bound(spec.max, "inf") + "]";
        diag.Add(Where(path, locate) + ": value " + Brief(v) + " is out of range " + range);
        return nullptr;
      }
    }
    out.push_back(v);
  }
  return IsList(spec.type) ? out : out[0];
}

Json ValidateObject(const Json& object, const std::vector<const OptionTable*>& tables,
                    const std::string& path, const Locator& locate, Diagnostics& diag,
                    const std::vector<std::string>& extra_keys) {
  Json result = Json::object();
  if (!object.is_object()) {
    diag.Add(Where(path.empty() ? "(top level)" : path, locate) +
             ": expected a mapping of option names to values, got " + Brief(object));
    return result;
  }
  std::vector<std::string> valid = extra_keys;
  for (const auto* table : tables)
    for (const auto& spec : *table) valid.push_back(spec.key);
  for (const auto& [key, value] : object.items()) {
    const std::string key_path = path.empty() ? key : path + "." + key;
    const OptionSpec* found = nullptr;
    for (const auto* table : tables)
      for (const auto& spec : *table)
        if (spec.key == key) found = &spec;
    bool extra = false;
    for (const auto& k : extra_keys) extra = extra || k == key;
    if (extra) continue;
    if (!found) {
      std::string msg = Where(key_path, locate) + ": unknown key " + Quote(key);
      const std::string hint = DidYouMean(key, valid);
      diag.Add(hint.empty() ? msg : msg + "; " + hint);
      continue;
    }
    Json v = CoerceOption(*found, value, key_path, locate, diag);
    if (!v.is_null()) result[key] = v;
  }
  return result;
}

Params::Params(std::vector<const OptionTable*> tables, Json values)
    : tables_(std::move(tables)), values_(std::move(values)) {}

Params Params::Derived(const OptionTable& table, const Json& values) const {
  std::vector<const OptionTable*> tables{&table};
  tables.insert(tables.end(), tables_.begin(), tables_.end());
  Json merged = values;
  for (auto it = values_.begin(); it != values_.end(); ++it) {
    const std::string& key = it.key();
    const bool own = std::any_of(table.begin(), table.end(), [&](const OptionSpec& s) { return s.key == key; });
    if (!own && !merged.contains(key)) merged[key] = *it;
  }
  return Params(std::move(tables), std::move(merged));
}

const OptionSpec* Params::Find(const std::string& key) const {
  for (const auto* table : tables_)
    for (const auto& spec : *table)
      if (spec.key == key) return &spec;
  return nullptr;
}

const OptionSpec& Params::Spec(const std::string& key) const {
  if (const OptionSpec* spec = Find(key)) return *spec;
  throw InternalError("Params: option " + Quote(key) + " is not declared by this technique");
}

const Json& Params::Get(const std::string& key) const {
  const OptionSpec& spec = Spec(key);
  auto it = values_.find(key);
  if (it != values_.end() && !it->is_null()) return *it;
  if (spec.default_value.is_null())
    throw UsageError("missing required option " + Quote(key) + " (--" + KebabCase(key) + ")");
  return spec.default_value;
}

bool Params::Declares(const std::string& key) const { return Find(key) != nullptr; }
bool Params::Has(const std::string& key) const {
  return IsSet(key) || !Spec(key).default_value.is_null();
}
bool Params::IsSet(const std::string& key) const {
  Spec(key);
  auto it = values_.find(key);
  return it != values_.end() && !it->is_null();
}
std::string Params::Str(const std::string& key) const { return Get(key).get<std::string>(); }
int64_t Params::Int(const std::string& key) const { return Get(key).get<int64_t>(); }
double Params::Float(const std::string& key) const { return Get(key).get<double>(); }
bool Params::Bool(const std::string& key) const { return Get(key).get<bool>(); }
std::vector<std::string> Params::Strs(const std::string& key) const {
  return Get(key).get<std::vector<std::string>>();
}
std::vector<int64_t> Params::Ints(const std::string& key) const {
  return Get(key).get<std::vector<int64_t>>();
}
std::vector<double> Params::Floats(const std::string& key) const {
  return Get(key).get<std::vector<double>>();
}

Json Params::Resolved() const {
  Json out = Json::object();
  std::set<std::string> seen;
  for (const auto* table : tables_)
    for (const auto& spec : *table) {
      if (!seen.insert(spec.key).second) continue;
      auto it = values_.find(spec.key);
      if (it != values_.end() && !it->is_null()) out[spec.key] = *it;
      else if (!spec.default_value.is_null()) out[spec.key] = spec.default_value;
    }
  return out;
}

std::string DescribeOption(const OptionSpec& spec) {
  std::string text = spec.help;
  std::vector<std::string> notes;
  if (spec.required) notes.push_back("required");
  if (!spec.default_value.is_null()) {
    const Json& d = spec.default_value;
    notes.push_back("default: " + (d.is_string() ? d.get<std::string>() : SafeDump(d)));
  }
  if (!spec.choices.empty()) notes.push_back("one of: " + Join(spec.choices, ", "));
  if (!notes.empty()) text += " (" + Join(notes, "; ") + ")";
  return text;
}

}  // namespace netlens
