#include "netlens/runner/from_run.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "netlens/core/strings.h"
#include "netlens/runner/common_options.h"

namespace netlens {
namespace fs = std::filesystem;

namespace {

// Options of the recorded run that decide how its model read the image, so that the maps and
// the input they are scored on line up.
const char* const kCarried[] = {"device", "dtype", "input_size", "channels", "channel_order",
                                "mean", "std", "crop_pct", "labels", "resize", "max_pixels"};

// The entry's first attribution map: a 4-d raw array of one sample that is also drawn as a picture.
const Json* FirstMapOutput(const Json& outputs) {
  std::set<std::string> drawn;
  for (const auto& o : outputs)
    if (o.value("kind", "") == "image") drawn.insert(o.value("artifact", "") + "\n" + o.value("layer", ""));
  for (const auto& o : outputs) {
    if (o.value("kind", "") != "raw" || !o.contains("shape") || !o["shape"].is_array()) continue;
    const Json& shape = o["shape"];
    if (shape.size() == 4 && shape[0] == 1 && drawn.count(o.value("artifact", "") + "\n" + o.value("layer", "")))
      return &o;
  }
  return nullptr;
}

}  // namespace

std::vector<Job> JobsFromRun(const TechniqueInfo& technique, const Json& values, const std::string& folder,
                             const std::string& where, std::vector<std::string>& problems) {
  const std::string dir = values["from"].get<std::string>();
  const std::string path = (fs::path(dir) / "manifest.json").string();
  std::vector<Job> jobs;
  if (!fs::is_regular_file(path)) {
    problems.push_back("no manifest.json in " + Quote(dir) + ": give the folder a netlens run wrote (its --out)");
    return jobs;
  }
  Json manifest;
  try {
    std::ifstream in(path);
    manifest = Json::parse(in);
  } catch (const std::exception& e) {
    problems.push_back(path + " is not a netlens manifest (" + std::string(e.what()).substr(0, 120) + ")");
    return jobs;
  }
  if (!manifest.is_object() || !manifest.contains("jobs") || !manifest["jobs"].is_array()) {
    problems.push_back(path + " has no list `jobs`: not a netlens manifest");
    return jobs;
  }
  // (model, image, target) -> its job's values; the order of first appearance is kept.
  std::vector<std::string> order;
  std::map<std::string, Json> groups;
  std::map<std::string, std::map<std::string, int>> seen;  // names of the maps of a group
  for (const auto& entry : manifest["jobs"]) {
    if (!entry.is_object() || entry.value("status", "") != "ok" || !entry.contains("target") ||
        !entry.contains("outputs") || !entry.contains("image") || !entry.contains("model"))
      continue;
    const std::string name = entry.value("technique", "");
    if (name == technique.name || name == "gist" || name == "factorize") continue;
    const Json* map = FirstMapOutput(entry["outputs"]);
    if (!map) continue;
    const std::string model = values.contains("model") ? values["model"].get<std::string>()
                                                       : entry["model"].value("path", "");
    const std::string image = entry["image"].get<std::string>();
    const std::string target = std::to_string(entry["target"].value("index", 0));
    const std::string key = model + "\n" + image + "\n" + target;
    if (!groups.count(key)) {
      Json v = values;
      const Json& recorded = entry.contains("options") ? entry["options"] : Json::object();
      for (const char* carried : kCarried)
        if (!values.contains(carried) && recorded.contains(carried) && !recorded[carried].is_null())
          v[carried] = recorded[carried];
      v["model"] = model;
      v["image"] = Json::array({image});
      v["target"] = Json::array({target});
      v["maps"] = Json::array();
      groups[key] = v;
      order.push_back(key);
    }
    // The same technique twice on one image (two tasks): the second is "gradcam#2".
    const int n = ++seen[key][name];
    const std::string label = n == 1 ? name : name + "#" + std::to_string(n);
    groups[key]["maps"].push_back(label + "=" + (fs::path(dir) / map->value("path", "")).lexically_normal().string());
  }
  if (order.empty())
    problems.push_back(path + " records no attribution map to score (no successful job wrote a map)");
  for (const auto& key : order) {
    Job job;
    job.technique = &technique;
    job.params = Params({&CommonOptions(), &technique.options}, groups[key]);
    job.image = groups[key]["image"][0].get<std::string>();
    job.folder = folder;
    job.where = where;
    jobs.push_back(std::move(job));
  }
  return jobs;
}

}  // namespace netlens
