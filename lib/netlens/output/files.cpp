#include "netlens/output/files.h"

#include <opencv2/imgcodecs.hpp>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"

namespace netlens {
namespace fs = std::filesystem;

void MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec || !fs::is_directory(path))
    throw RuntimeError("cannot create folder " + Quote(path) + ": " +
                       (ec ? ec.message() : std::string("a file is in the way")));
}

void WriteFileAtomic(const std::string& path, const std::string& bytes) {
  static std::atomic<int> counter{0};
  const fs::path target(path);
  if (target.has_parent_path()) MakeDirs(target.parent_path().string());
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" +
                          std::to_string(counter++);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw RuntimeError("cannot write " + Quote(path) + ": " + std::strerror(errno));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool flushed = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!written || !flushed || !closed) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw RuntimeError("cannot write " + Quote(path) + ": " + why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw RuntimeError("cannot move " + Quote(tmp) + " to " + Quote(path) + ": " + why);
  }
}

void WriteImageAtomic(const std::string& path, const cv::Mat& image) {
  std::vector<uchar> buffer;
  const std::string ext = fs::path(path).extension().string();
  if (!cv::imencode(ext.empty() ? ".png" : ext, image, buffer))
    throw RuntimeError("cannot encode image " + Quote(path));
  WriteFileAtomic(path, std::string(buffer.begin(), buffer.end()));
}

}  // namespace netlens
