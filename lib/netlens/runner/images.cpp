#include "netlens/runner/images.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "netlens/core/strings.h"

namespace netlens {
namespace fs = std::filesystem;

bool IsImageFile(const std::string& path) {
  const std::string ext = ToLower(fs::path(path).extension().string());
  for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})
    if (ext == e) return true;
  return false;
}

std::vector<std::string> ExpandImages(const std::vector<std::string>& entries,
                                      std::vector<std::string>& problems) {
  std::vector<std::string> out;
  for (const auto& entry : entries) {
    const std::string ext = ToLower(fs::path(entry).extension().string());
    if (entry.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      std::vector<std::string> found;
      if (::glob(entry.c_str(), 0, nullptr, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; ++i) found.push_back(g.gl_pathv[i]);
      ::globfree(&g);
      if (found.empty()) problems.push_back("image pattern " + Quote(entry) + " matches no file");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::is_directory(entry)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(entry))
        if (e.is_regular_file() && IsImageFile(e.path().string())) found.push_back(e.path().string());
      if (found.empty()) problems.push_back("image folder " + Quote(entry) + " holds no image file");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (ext == ".txt" || ext == ".lst") {
      std::ifstream in(entry);
      if (!in) {
        problems.push_back("image list " + Quote(entry) + " not found or not readable");
        continue;
      }
      const fs::path base = fs::path(entry).parent_path();
      for (std::string line; std::getline(in, line);) {
        line = Trim(line);
        if (line.empty() || line[0] == '#') continue;
        const fs::path p(line);
        out.push_back(p.is_relative() ? (base / p).string() : line);
      }
    } else {
      out.push_back(entry);
    }
  }
  return out;
}

}  // namespace netlens
