// Reading images and turning them into model input, and back into pictures.
#pragma once

#include <opencv2/core.hpp>
#include "netlens/model/libtorch.h"

#include <string>
#include <vector>

#include "netlens/model/model.h"

namespace netlens {

// How an image is brought to the model's input size:
//   crop: shorter side to size / crop_pct, then the centre size x size (torchvision's
//         Resize + CenterCrop; crop_pct 0.875 gives 256 -> 224),
//   fit:  resize to the input size, ignoring the aspect ratio,
//   none: use the image as it is (models with global pooling accept any size).
enum class ResizePolicy { kCrop, kFit, kNone };
ResizePolicy ParseResizePolicy(const std::string& name);

struct InputImage {
  std::string path;
  cv::Mat original;   // as read, converted to 8-bit BGR
  cv::Mat display;    // what the model sees, 8-bit BGR, before normalization (for overlays)
  torch::Tensor tensor;  // 1 x C x H x W, normalized, on the model's device and dtype
};

// Reads PNG/JPEG/BMP/WebP/TIFF with OpenCV. Grayscale, 16-bit and RGBA images are converted
// (RGBA composited on white), each with a log line. Throws UsageError when the file is missing
// or cannot be decoded.
cv::Mat ReadImage(const std::string& path);

// Bounds on what an image may cost: with --resize none, images over `max_pixels` are scaled
// down (aspect ratio kept, logged); an input whose forward+backward pass would exceed `budget`
// is refused with the estimate and the remedy before any tensor is made.
struct InputLimits {
  int64_t max_pixels = 0;  // 0: no bound
  MemoryBudget budget;     // bytes 0: unchecked
};

// The picture the model sees: `bgr` brought to the model's input per `policy` (and, with
// policy none, scaled down to `limits.max_pixels`). Logs every conversion under `name`.
cv::Mat ResizeForModel(const cv::Mat& bgr, const std::string& name, const ModelMetadata& meta,
                       ResizePolicy policy, const InputLimits& limits = {});

// Resizes per `policy`, converts colour to the model's channel order and normalizes.
InputImage PrepareInput(const std::string& path, const Model& model, ResizePolicy policy,
                        const InputLimits& limits = {});
InputImage PrepareInput(const cv::Mat& bgr, const std::string& name, const Model& model,
                        ResizePolicy policy, const InputLimits& limits = {});

// Decodes an image file's bytes like ReadImage (for fuzzing and in-memory inputs).
cv::Mat DecodeImage(const std::vector<unsigned char>& bytes, const std::string& name);

// The 1 x C x H x W tensor for an 8-bit BGR image already at the model's size.
torch::Tensor ImageToTensor(const cv::Mat& bgr, const ModelMetadata& meta,
                            torch::Device device, torch::ScalarType dtype);

}  // namespace netlens
