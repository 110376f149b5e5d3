#include "netlens/core/task_file.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"

namespace netlens {
namespace {

// A plain YAML scalar as the JSON value a reader expects: null, bool, integer, number, string.
// Quoted scalars (tag "!") always stay strings.
Json ScalarToJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;
  if (s == "~" || s == "null" || s == "Null" || s == "NULL" || s.empty()) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  char* end = nullptr;
  errno = 0;
  const long long i = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() + s.size() && errno == 0) return static_cast<int64_t>(i);
  const double d = std::strtod(s.c_str(), &end);
  if (end == s.c_str() + s.size() && std::isfinite(d)) return d;
  return s;
}

std::string Mark(const std::string& name, const YAML::Mark& mark) {
  return name + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// Walks a YAML tree into JSON within the limits of TaskFileLimits: an alias is a reference to
// its anchor's node, so a self-referencing alias is a cycle and nested aliases multiply ("billion
// laughs"); both are stopped here, before they can exhaust the stack or the memory.
struct Walk {
  const std::string& name;
  std::map<std::string, std::string>& locations;
  std::vector<YAML::Node> ancestors;  // the nodes on the path from the root to the current one
  size_t values = 0;
};

Json NodeToJson(const YAML::Node& node, const std::string& path, Walk& walk) {
  const std::string& name = walk.name;
  auto& locations = walk.locations;
  for (const auto& ancestor : walk.ancestors)
    if (ancestor.is(node))
      throw UsageError(Mark(name, node.Mark()) + ": an alias refers to a node that contains it "
                       "(a cycle such as `a: &a [*a]`); task files must be trees");
  if (walk.ancestors.size() >= TaskFileLimits::kMaxDepth)
    throw UsageError(Mark(name, node.Mark()) + ": nesting deeper than " +
                     std::to_string(TaskFileLimits::kMaxDepth) + " levels; task files are flat lists of tasks");
  if (++walk.values > TaskFileLimits::kMaxValues)
    throw UsageError(Mark(name, node.Mark()) + ": the file expands to more than " +
                     std::to_string(TaskFileLimits::kMaxValues) +
                     " values (each *alias copies its anchor; nested aliases multiply); list many "
                     "images in a folder, glob or .txt file instead");
  locations[path] = Mark(name, node.Mark());
  walk.ancestors.push_back(node);
  struct Pop {
    std::vector<YAML::Node>& v;
    ~Pop() { v.pop_back(); }
  } pop{walk.ancestors};
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return ScalarToJson(node);
    case YAML::NodeType::Sequence: {
      Json arr = Json::array();
      for (size_t i = 0; i < node.size(); ++i)
        arr.push_back(NodeToJson(node[i], path + "[" + std::to_string(i) + "]", walk));
      return arr;
    }
    case YAML::NodeType::Map: {
      Json obj = Json::object();
      for (const auto& kv : node) {
        const std::string key = kv.first.Scalar();
        const std::string child = path.empty() ? key : path + "." + key;
        if (obj.contains(key))
          throw UsageError(Mark(name, kv.first.Mark()) + ": duplicate key " + Quote(key));
        obj[key] = NodeToJson(kv.second, child, walk);
        locations[child] = Mark(name, kv.first.Mark());
      }
      return obj;
    }
  }
  return nullptr;
}

// Line and column of a byte offset, for nlohmann's JSON syntax errors.
std::string LineColumn(const std::string& text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

// Offset of the first byte that is not part of valid UTF-8, or npos. Task files are text: values
// with invalid bytes could not be written back into JSON (manifest, messages).
size_t InvalidUtf8(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t extra = 0;
    unsigned min = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { extra = 1; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; min = 0x10000; }
    else return i;
    if (i + extra >= text.size()) return i;  // truncated sequence
    unsigned code = c & (0x3F >> extra);
    for (size_t k = 1; k <= extra; ++k) {
      const auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80) return i;
      code = (code << 6) | (d & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return i;
    i += extra + 1;
  }
  return std::string::npos;
}

}  // namespace

std::string TaskDocument::Locate(const std::string& key_path) const {
  auto it = locations.find(key_path);
  return it == locations.end() ? "" : it->second;
}

Locator TaskDocument::MakeLocator() const {
  return [this](const std::string& p) { return Locate(p); };
}

TaskDocument ParseTaskText(const std::string& text, const std::string& name) {
  TaskDocument doc;
  doc.path = name;
  const bool is_json = ToLower(name).size() >= 5 &&
                       ToLower(name).compare(name.size() - 5, 5, ".json") == 0;
  if (text.size() > TaskFileLimits::kMaxBytes)
    throw UsageError(name + ": " + std::to_string(text.size()) + " bytes; task files are limited to " +
                     std::to_string(TaskFileLimits::kMaxBytes) + " bytes");
  const size_t bad = InvalidUtf8(text);
  if (bad != std::string::npos)
    throw UsageError(name + ":" + LineColumn(text, bad) + ": invalid UTF-8 (byte 0x" + [&] {
      char hex[3];
      std::snprintf(hex, sizeof(hex), "%02x", static_cast<unsigned char>(text[bad]));
      return std::string(hex);
    }() + "); task files must be UTF-8 text");
  if (is_json) {
    // nlohmann's parser is iterative; the callback stops deep nesting before anything recursive
    // (copies, dumps, destruction of the value) meets it, and counts values.
    size_t values = 0;
    const auto limit = [&](int depth, Json::parse_event_t, Json&) {
      if (depth > static_cast<int>(TaskFileLimits::kMaxDepth))
        throw UsageError(name + ": nesting deeper than " + std::to_string(TaskFileLimits::kMaxDepth) +
                         " levels; task files are flat lists of tasks");
      if (++values > 4 * TaskFileLimits::kMaxValues)  // events: up to ~3 per value
        throw UsageError(name + ": more than " + std::to_string(TaskFileLimits::kMaxValues) +
                         " values; list many images in a folder, glob or .txt file instead");
      return true;
    };
    try {
      doc.root = Json::parse(text, limit);
    } catch (const Json::parse_error& e) {
      throw UsageError(name + ":" + LineColumn(text, e.byte > 0 ? e.byte - 1 : 0) +
                       ": invalid JSON: " + e.what());
    }
    catch (const Json::exception& e) {  // e.g. out_of_range 406: a number beyond double's range
      throw UsageError(name + ": invalid JSON: " + e.what());
    }
  }
  try {
    // YAML is a superset of JSON, so JSON files are read a second time for key positions.
    const YAML::Node node = YAML::Load(text);
    Walk walk{name, doc.locations, {}, 0};
    Json from_yaml = NodeToJson(node, "", walk);
    if (!is_json) doc.root = std::move(from_yaml);
  } catch (const YAML::Exception& e) {
    if (!is_json)
      throw UsageError(Mark(name, e.mark) + ": invalid YAML: " + e.msg);
    doc.locations.clear();  // valid JSON that yaml-cpp does not read: no positions, same values
  }
  return doc;
}

TaskDocument LoadTaskFile(const std::string& path) {
  const std::string lower = ToLower(path);
  auto ends_with = [&](const std::string& ext) {
    return lower.size() >= ext.size() && lower.compare(lower.size() - ext.size(), ext.size(), ext) == 0;
  };
  if (!ends_with(".json") && !ends_with(".yaml") && !ends_with(".yml"))
    throw UsageError("task file " + Quote(path) + ": unknown extension; use .json, .yaml or .yml");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("task file " + Quote(path) + " not found or not readable");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > TaskFileLimits::kMaxBytes)
    throw UsageError("task file " + Quote(path) + " has " + std::to_string(size) +
                     " bytes; task files are limited to " + std::to_string(TaskFileLimits::kMaxBytes) +
                     " bytes (list many images in a .txt file instead)");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseTaskText(buffer.str(), path);
}

}  // namespace netlens
