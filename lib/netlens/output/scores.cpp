#include "netlens/output/scores.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "netlens/core/json_text.h"
#include "netlens/core/options.h"
#include "netlens/output/files.h"

namespace netlens {
namespace fs = std::filesystem;

namespace {

// A CSV field: quoted when it holds a comma, a quote or a line break.
std::string Csv(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string WriteScores(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "manifest.json");
  if (!in) return "";
  Json manifest;
  try {
    manifest = Json::parse(in);
  } catch (const std::exception&) {
    return "";
  }
  std::string csv = "image,target,technique,metric,value,higher_is_better\n";
  struct Sum {
    double total = 0;
    int count = 0;
    bool higher = true;
  };
  std::map<std::string, std::map<std::string, Sum>> sums;  // metric -> technique -> sum
  size_t rows = 0;
  for (const auto& job : manifest.value("jobs", Json::array())) {
    if (!job.is_object() || !job.contains("metrics") || !job["metrics"].is_object() ||
        !job["metrics"].contains("scores"))
      continue;
    const std::string image = job.value("image", "");
    const std::string target = job.contains("target") ? job["target"].value("label", "") : "";
    for (const auto& s : job["metrics"]["scores"]) {
      const std::string technique = s.value("technique", ""), metric = s.value("metric", "");
      const double value = s.value("value", 0.0);
      const bool higher = s.value("higher_is_better", true);
      char number[32];
      std::snprintf(number, sizeof(number), "%.6g", value);
      csv += Csv(image) + "," + Csv(target) + "," + Csv(technique) + "," + Csv(metric) + "," + number + "," +
             (higher ? "true" : "false") + "\n";
      Sum& sum = sums[metric][technique];
      sum.total += value;
      ++sum.count;
      sum.higher = higher;
      ++rows;
    }
  }
  if (rows == 0) return "";
  WriteFileAtomic((fs::path(dir) / "scores.csv").string(), csv);
  std::string table;
  for (const auto& [metric, by_technique] : sums) {
    std::vector<std::pair<double, std::string>> ranked;
    bool higher = true;
    int images = 0;
    for (const auto& [technique, sum] : by_technique) {
      ranked.emplace_back(sum.total / sum.count, technique);
      higher = sum.higher;
      images = std::max(images, sum.count);
    }
    std::sort(ranked.begin(), ranked.end());
    if (higher) std::reverse(ranked.begin(), ranked.end());
    table += metric + " (" + (higher ? "higher" : "lower") + " is better; mean of " + std::to_string(images) +
             " image(s))\n";
    for (size_t i = 0; i < ranked.size(); ++i) {
      char line[160];
      std::snprintf(line, sizeof(line), "  %zu. %-24s %.4f\n", i + 1, ranked[i].second.c_str(), ranked[i].first);
      table += line;
    }
  }
  return table + "scores: " + (fs::path(dir) / "scores.csv").string() + "\n";
}

}  // namespace netlens
