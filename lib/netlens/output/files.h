// Atomic file writes: every file netlens produces is written under a temporary name in the same
// folder and renamed into place, so a failure or a kill never leaves a half-written file.
#pragma once

#include <opencv2/core.hpp>

#include <string>

namespace netlens {

// Creates missing parent folders. Throws RuntimeError (naming the path) on failure.
void WriteFileAtomic(const std::string& path, const std::string& bytes);

// Encodes by extension (.png, .jpg) and writes atomically.
void WriteImageAtomic(const std::string& path, const cv::Mat& image);

// Creates a folder (and parents); throws RuntimeError if it cannot.
void MakeDirs(const std::string& path);

}  // namespace netlens
