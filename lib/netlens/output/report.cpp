#include "netlens/output/report.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "netlens/core/errors.h"
#include "netlens/core/json_text.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/core/version.h"
#include "netlens/image/image_io.h"
#include "netlens/output/files.h"

namespace netlens {
namespace fs = std::filesystem;

extern const char* const kReportPage;  // report_page.cpp: HTML, CSS, script; data at @@DATA@@

namespace {

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Base64(const std::string& bytes) {
  static const char* const kTable = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += {kTable[v >> 18], kTable[(v >> 12) & 63], kTable[(v >> 6) & 63], kTable[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    out += {kTable[v >> 18], kTable[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8);
    out += {kTable[v >> 18], kTable[(v >> 12) & 63], kTable[(v >> 6) & 63], '='};
  }
  return out;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A relative path as a URL: every byte outside the unreserved set and '/' percent-encoded.
std::string UrlPath(const std::string& path) {
  static const char* const kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '.' || c == '-' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The manifest of `dir`: manifest.json, or the shards' manifests with their jobs concatenated.
Json LoadManifest(const fs::path& dir) {
  std::vector<fs::path> files;
  if (fs::exists(dir / "manifest.json")) {
    files.push_back(dir / "manifest.json");
  } else if (fs::is_directory(dir)) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (StartsWith(name, "manifest.shard-") && EndsWith(name, ".json")) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
  }
  if (files.empty())
    throw UsageError("report: " + Quote(dir.string()) +
                     (fs::is_directory(dir) ? " has no manifest.json, so it is not a netlens output folder; "
                                            : " is not a folder; ") +
                     "give the folder a run wrote (its --out), or add --report to the run");
  Json merged;
  for (const auto& file : files) {
    Json m;
    try {
      std::ifstream in(file);
      m = Json::parse(in);
    } catch (const std::exception& e) {
      throw UsageError("report: " + file.string() + " is not valid JSON (" + e.what() +
                       "); was the run interrupted? Run it again with --skip-existing");
    }
    if (!m.is_object() || !m.contains("jobs") || !m["jobs"].is_array())
      throw UsageError("report: " + file.string() + " has no \"jobs\" list; not a netlens manifest");
    if (merged.is_null()) {
      merged = m;
    } else {
      for (auto& job : m["jobs"]) merged["jobs"].push_back(job);
    }
  }
  return merged;
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

class Sources {
 public:
  Sources(fs::path dir, bool embed) : dir_(std::move(dir)), embed_(embed) {}

  // A picture of the run folder (path relative to it) as a data: URI or a relative URL.
  std::string Of(const std::string& rel) {
    ++count;
    if (!embed_) return UrlPath(rel);
    const std::string bytes = ReadAll(dir_ / rel);
    if (bytes.empty()) return UrlPath(rel);
    const std::string ext = ToLower(fs::path(rel).extension().string());
    const std::string mime = ext == ".gif" ? "image/gif" : ext == ".jpg" || ext == ".jpeg" ? "image/jpeg" : "image/png";
    return "data:" + mime + ";base64," + Base64(bytes);
  }

  // The job's input image, scaled to at most 320 pixels, always embedded (a JPEG).
  std::string Input(const std::string& path) {
    auto it = inputs_.find(path);
    if (it != inputs_.end()) return it->second;
    std::string uri;
    for (const fs::path& candidate : {fs::path(path), dir_ / path}) {
      std::error_code ec;
      if (path.empty() || !fs::is_regular_file(candidate, ec)) continue;
      try {
        // Quietly: the run already logged this image's conversions.
        const auto level = Log().level();
        Log().set_level(spdlog::level::warn);
        cv::Mat img;
        try {
          img = ReadImage(candidate.string());
        } catch (...) {
          Log().set_level(level);
          throw;
        }
        Log().set_level(level);
        const double f = std::min(1.0, 320.0 / std::max(img.rows, img.cols));
        if (f < 1) cv::resize(img, img, cv::Size(), f, f, cv::INTER_AREA);
        std::vector<unsigned char> buf;
        cv::imencode(".jpg", img, buf, {cv::IMWRITE_JPEG_QUALITY, 88});
        uri = "data:image/jpeg;base64," + Base64(std::string(buf.begin(), buf.end()));
      } catch (const std::exception& e) {
        Log().debug("report: input {} not shown: {}", path, e.what());
      }
      break;
    }
    inputs_[path] = uri;
    return uri;
  }

  size_t count = 0;

 private:
  fs::path dir_;
  bool embed_;
  std::map<std::string, std::string> inputs_;
};

// Outputs of one job grouped by artifact: {artifact, layers: [{layer, views: [[view, src, caption]]}],
// raw: [[label, url]]}, in the order the technique wrote them (layers in forward order).
Json GroupOutputs(const Json& outputs, Sources& sources) {
  Json groups = Json::array();
  std::map<std::string, size_t> index;
  for (const auto& o : outputs) {
    if (!o.is_object()) continue;
    const std::string artifact = Str(o, "artifact"), kind = Str(o, "kind"), path = Str(o, "path");
    if (path.empty()) continue;
    auto it = index.find(artifact);
    if (it == index.end()) {
      it = index.emplace(artifact, groups.size()).first;
      groups.push_back({{"artifact", artifact}, {"layers", Json::array()}, {"raw", Json::array()}});
    }
    Json& g = groups[it->second];
    const std::string layer = Str(o, "layer");
    if (kind == "raw") {
      g["raw"].push_back({fs::path(path).filename().string(), UrlPath(path)});
      continue;
    }
    Json* slot = nullptr;
    for (auto& l : g["layers"])
      if (l["layer"] == layer) slot = &l;
    if (!slot) {
      g["layers"].push_back({{"layer", layer}, {"views", Json::array()}});
      slot = &g["layers"].back();
    }
    std::string view = kind == "animation" ? "animation" : Str(o, "view");
    (*slot)["views"].push_back({view.empty() ? "color" : view, sources.Of(path), Str(o, "caption")});
  }
  return groups;
}

std::string Tail(const fs::path& log, size_t max_lines) {
  const std::string text = ReadAll(log);
  size_t pos = text.size(), lines = 0;
  while (pos > 0 && lines <= max_lines) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
    ++lines;
  }
  if (lines <= max_lines) return text;  // all of it (an empty log included)
  return "... (earlier lines in " + log.filename().string() + ")\n" + text.substr(pos + 1);
}

}  // namespace

ReportInfo WriteReport(const std::string& dir_text, const ReportOptions& options) {
  const fs::path dir(dir_text.empty() ? "." : dir_text);
  const Json manifest = LoadManifest(dir);
  // Embed when the pictures are small enough in total (or always / never when asked).
  int64_t picture_bytes = 0;
  for (const auto& job : manifest["jobs"])
    if (job.is_object())
      for (const auto& o : job.value("outputs", Json::array()))
        if (o.is_object() && Str(o, "kind") != "raw") {
          std::error_code ec;
          const auto size = fs::file_size(dir / Str(o, "path"), ec);
          if (!ec) picture_bytes += static_cast<int64_t>(size);
        }
  const bool embed = options.embed == "always" ||
                     (options.embed == "auto" && picture_bytes <= options.embed_limit_bytes);
  if (options.embed == "auto" && !embed)
    Log().info("report: the pictures sum to {}, over {}; linking them by relative path instead of embedding "
               "(keep report.html in its folder; --embed always to embed anyway)",
               FormatBytes(static_cast<double>(picture_bytes)), FormatBytes(static_cast<double>(options.embed_limit_bytes)));
  Sources sources(dir, embed);

  // One section per input image (jobs without one: per technique), in the order of the manifest.
  Json sections = Json::array();
  std::map<std::string, size_t> section_of;
  ReportInfo info;
  for (const auto& job : manifest["jobs"]) {
    if (!job.is_object()) continue;
    ++info.jobs;
    const std::string image = Str(job, "image"), technique = Str(job, "technique");
    const std::string key = image.empty() ? "technique:" + technique : image;
    auto it = section_of.find(key);
    if (it == section_of.end()) {
      it = section_of.emplace(key, sections.size()).first;
      sections.push_back({{"title", image.empty() ? technique : fs::path(image).filename().string()},
                          {"path", image}, {"image", image.empty() ? "" : sources.Input(image)},
                          {"predictions", Json::array()}, {"jobs", Json::array()}, {"failed", 0}});
    }
    Json& section = sections[it->second];
    if (section["predictions"].empty() && job.contains("predictions")) section["predictions"] = job["predictions"];
    Json entry{{"technique", technique}, {"status", Str(job, "status")}, {"task", Str(job, "task")}};
    if (job.contains("target") && job["target"].is_object())
      entry["target"] = Str(job["target"], "label") + " (" + SafeDump(job["target"].value("index", Json())) + ")";
    if (Str(job, "status") == "failed") {
      ++info.failed;
      section["failed"] = section["failed"].get<int>() + 1;
      entry["error"] = Str(job, "error");
    }
    for (const char* key : {"warnings", "metrics", "timings_ms", "options"})
      if (job.contains(key)) entry[key] = job[key];
    if (job.contains("skipped")) entry["skipped"] = true;
    entry["groups"] = GroupOutputs(job.value("outputs", Json::array()), sources);
    section["jobs"].push_back(std::move(entry));
  }
  info.sections = sections.size();
  info.pictures = sources.count;
  info.embedded = embed;

  std::string log;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (StartsWith(name, "netlens") && EndsWith(name, ".log"))
      log += (log.empty() ? "" : "\n") + std::string("== ") + name + "\n" + Tail(entry.path(), 400);
  }
  const Json data{{"title", "netlens report: " + fs::absolute(dir).lexically_normal().filename().string()},
                  {"folder", fs::absolute(dir).lexically_normal().string()},
                  {"version", kVersion},
                  {"config", manifest.value("config", Json::object())},
                  {"summary", manifest.value("summary", Json::object())},
                  {"sections", sections},
                  {"log", log},
                  {"embedded", embed}};
  std::string json = SafeDump(data);
  // Inside <script>: "</" would end the element, and U+2028/9 end a JS line in old engines.
  std::string safe;
  safe.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    if (json[i] == '<' && i + 1 < json.size() && json[i + 1] == '/') {
      safe += "<\\/";
      ++i;
    } else {
      safe += json[i];
    }
  }
  std::string page = kReportPage;
  const std::string marker = "@@DATA@@";
  page.replace(page.find(marker), marker.size(), safe);
  info.path = (dir / "report.html").string();
  WriteFileAtomic(info.path, page);
  Log().info("report: {} ({} job(s), {} failed, {} picture(s) {})", info.path, info.jobs, info.failed,
             info.pictures, embed ? "embedded" : "linked");
  return info;
}

}  // namespace netlens
