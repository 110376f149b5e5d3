// libFuzzer harness for image decoding and preprocessing: bytes -> DecodeImage (OpenCV's
// decoders, then netlens' depth, gray and alpha conversions) -> ResizeForModel under a resize
// policy, input size and crop_pct taken from the first bytes -> ImageToTensor. Checks the tensor's
// shape and that it is finite. Anything but a UsageError is a bug. Seeds: assets/ (tools/fuzz.sh).
#include <opencv2/core/utils/logger.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/image/image_io.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  netlens::SetLogLevel("off");
  // Bound what one input may decode to: libFuzzer's own RSS limit is 2 GB.
  setenv("OPENCV_IO_MAX_IMAGE_PIXELS", "4000000", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  netlens::ModelMetadata meta;
  meta.height = 1 + data[0] % 64;
  meta.width = 1 + data[1] % 64;
  meta.crop_pct = 0.05 + (data[2] % 96) / 100.0;
  const int kind = data[3] % 6;
  if (kind >= 3) {
    meta.channels = 1;
    meta.channel_order = "gray";
    meta.mean = {0.5};
    meta.std = {0.25};
  } else if (kind == 1) {
    meta.channel_order = "bgr";
  }
  const auto policy = static_cast<netlens::ResizePolicy>(data[3] % 3);
  netlens::InputLimits limits;
  limits.max_pixels = 4096;
  const std::vector<unsigned char> bytes(data + 4, data + size);
  try {
    const cv::Mat bgr = netlens::DecodeImage(bytes, "fuzz");
    const cv::Mat shown = netlens::ResizeForModel(bgr, "fuzz", meta, policy, limits);
    const torch::Tensor t = netlens::ImageToTensor(shown, meta, torch::kCPU, torch::kFloat32);
    if (t.dim() != 4 || t.size(0) != 1 || t.size(1) != meta.channels || t.size(2) != shown.rows ||
        t.size(3) != shown.cols)
      std::abort();
    if (policy != netlens::ResizePolicy::kNone && (t.size(2) != meta.height || t.size(3) != meta.width))
      std::abort();
    if (!torch::isfinite(t).all().item<bool>()) std::abort();
  } catch (const netlens::UsageError&) {
  }
  return 0;
}
