#include "netlens/image/image_io.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>

#include <cstring>

#include <cmath>
#include <filesystem>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"

namespace netlens {

ResizePolicy ParseResizePolicy(const std::string& name) {
  if (name == "crop") return ResizePolicy::kCrop;
  if (name == "fit") return ResizePolicy::kFit;
  if (name == "none") return ResizePolicy::kNone;
  throw UsageError("resize " + Quote(name) + ": use crop, fit or none");
}

namespace {

// 8-bit BGR from whatever OpenCV decoded: depth, gray and alpha conversions, each logged.
cv::Mat ToBgr8(cv::Mat image, const std::string& path) {
  if (image.empty())
    throw UsageError("image " + Quote(path) +
                     " cannot be decoded (corrupt, or not PNG/JPEG/BMP/WebP/TIFF)");
  const std::string name = std::filesystem::path(path).filename().string();
  if (image.depth() != CV_8U) {
    double scale = image.depth() == CV_16U ? 1.0 / 257.0 : 1.0;
    if (image.depth() == CV_32F || image.depth() == CV_64F) scale = 255.0;
    image.convertTo(image, CV_8U, scale);
    Log().info("image {}: converted {}-bit samples to 8-bit", name,
               image.depth() == CV_16U ? 16 : 32);
  }
  if (image.channels() == 1) {
    cv::cvtColor(image, image, cv::COLOR_GRAY2BGR);
    Log().info("image {}: grayscale converted to 3 channels", name);
  } else if (image.channels() == 4) {
    cv::Mat bgr, alpha;
    std::vector<cv::Mat> planes;
    cv::split(image, planes);
    planes[3].convertTo(alpha, CV_32F, 1.0 / 255.0);
    cv::merge(std::vector<cv::Mat>{planes[0], planes[1], planes[2]}, bgr);
    cv::Mat bgr_f, alpha3;
    bgr.convertTo(bgr_f, CV_32FC3);
    cv::merge(std::vector<cv::Mat>{alpha, alpha, alpha}, alpha3);
    cv::Mat white(bgr_f.size(), CV_32FC3, cv::Scalar(255, 255, 255));
    cv::Mat out = bgr_f.mul(alpha3) + white.mul(cv::Scalar(1, 1, 1) - alpha3);
    out.convertTo(image, CV_8UC3);
    Log().info("image {}: RGBA composited on white to 3 channels", name);
  } else if (image.channels() != 3) {
    throw UsageError("image " + Quote(path) + " has " + std::to_string(image.channels()) +
                     " channels; netlens reads 1, 3 or 4");
  }
  return image;
}

}  // namespace

namespace {

// Images over this many pixels are refused before decoding: OpenCV's own bound (2^30 pixels,
// read from the environment when the library loads) lets a 100-byte JPEG header ask for 3 GB.
constexpr int64_t kMaxDecodePixels = 200'000'000;

uint32_t BigEndian(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}
uint32_t LittleEndian(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Width and height from a PNG, JPEG, BMP or WebP header; {0, 0} when unknown (OpenCV decides).
std::pair<int64_t, int64_t> HeaderSize(const unsigned char* b, size_t n) {
  if (n >= 24 && std::memcmp(b, "\x89PNG", 4) == 0) return {BigEndian(b + 16, 4), BigEndian(b + 20, 4)};
  if (n >= 26 && b[0] == 'B' && b[1] == 'M') {
    const auto h = static_cast<int32_t>(LittleEndian(b + 22, 4));
    return {static_cast<int32_t>(LittleEndian(b + 18, 4)), h < 0 ? -static_cast<int64_t>(h) : h};
  }
  if (n >= 30 && std::memcmp(b, "RIFF", 4) == 0 && std::memcmp(b + 8, "WEBP", 4) == 0) {
    if (std::memcmp(b + 12, "VP8X", 4) == 0) return {LittleEndian(b + 24, 3) + 1, LittleEndian(b + 27, 3) + 1};
    if (std::memcmp(b + 12, "VP8L", 4) == 0) {
      const uint32_t bits = LittleEndian(b + 21, 4);
      return {(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
    }
    if (std::memcmp(b + 12, "VP8 ", 4) == 0) return {LittleEndian(b + 26, 2) & 0x3FFF, LittleEndian(b + 28, 2) & 0x3FFF};
  }
  if (n >= 4 && b[0] == 0xFF && b[1] == 0xD8) {
    // JPEG: walk the markers to the frame header, skipping stray bytes between markers as
    // libjpeg does ("extraneous bytes before marker").
    size_t i = 2;
    while (i + 1 < n) {
      if (b[i] != 0xFF) { ++i; continue; }
      const unsigned char m = b[i + 1];
      if (m == 0xFF) { ++i; continue; }                                            // fill byte
      if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { i += 2; continue; }  // no length
      if (m == 0xD9 || i + 9 >= n) break;
      if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)
        return {BigEndian(b + i + 7, 2), BigEndian(b + i + 5, 2)};
      i += 2 + BigEndian(b + i + 2, 2);
    }
  }
  return {0, 0};
}

void CheckHeaderSize(const unsigned char* b, size_t n, const std::string& name) {
  const auto [w, h] = HeaderSize(b, n);
  if (std::abs(static_cast<double>(w)) * std::abs(static_cast<double>(h)) > static_cast<double>(kMaxDecodePixels))
    throw UsageError("image " + Quote(name) + " declares " + std::to_string(w) + "x" + std::to_string(h) +
                     " pixels; netlens reads images of up to " + std::to_string(kMaxDecodePixels / 1000000) +
                     " million pixels (scale it down first)");
}

}  // namespace

cv::Mat ReadImage(const std::string& path) {
  if (!std::filesystem::exists(path)) throw UsageError("image " + Quote(path) + " not found");
  if (!std::filesystem::is_regular_file(path))
    throw UsageError("image " + Quote(path) + " is not a file");
  std::vector<unsigned char> head(1 << 18);  // JPEG frame headers follow EXIF blocks of <= 64 KB
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  CheckHeaderSize(head.data(), static_cast<size_t>(in.gcount()), path);
  return ToBgr8(cv::imread(path, cv::IMREAD_UNCHANGED), path);
}

cv::Mat DecodeImage(const std::vector<unsigned char>& bytes, const std::string& name) {
  cv::Mat image;
  CheckHeaderSize(bytes.data(), bytes.size(), name);
  if (!bytes.empty()) image = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  return ToBgr8(image, name);
}

namespace {

cv::Mat ResizeTo(const cv::Mat& image, int width, int height) {
  const bool shrink = width < image.cols || height < image.rows;
  cv::Mat out;
  // INTER_AREA when shrinking is close to PIL's antialiased bilinear that torchvision uses.
  cv::resize(image, out, cv::Size(width, height), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

}  // namespace

torch::Tensor ImageToTensor(const cv::Mat& bgr, const ModelMetadata& meta, torch::Device device,
                            torch::ScalarType dtype) {
  if (meta.channels != 1 && meta.channels != 3)
    throw UsageError("images can feed 1- or 3-channel models; this one takes " +
                     std::to_string(meta.channels) + " channels");
  cv::Mat converted;
  if (meta.channel_order == "gray" || meta.channels == 1) {
    cv::cvtColor(bgr, converted, cv::COLOR_BGR2GRAY);
  } else if (meta.channel_order == "bgr") {
    converted = bgr;
  } else {
    cv::cvtColor(bgr, converted, cv::COLOR_BGR2RGB);
  }
  converted = converted.isContinuous() ? converted : converted.clone();
  const int channels = converted.channels();
  torch::Tensor t = torch::from_blob(converted.data, {converted.rows, converted.cols, channels},
                                     torch::kUInt8)
                        .permute({2, 0, 1})
                        .to(torch::kFloat64)
                        .div(255.0);
  auto mean = torch::tensor(meta.mean, torch::kFloat64).view({channels, 1, 1});
  auto stdv = torch::tensor(meta.std, torch::kFloat64).view({channels, 1, 1});
  t = ((t - mean) / stdv).unsqueeze(0).contiguous();
  return t.to(device, dtype);
}

cv::Mat ResizeForModel(const cv::Mat& bgr, const std::string& name, const ModelMetadata& meta,
                       ResizePolicy policy, const InputLimits& limits) {
  cv::Mat display;
  const int H = static_cast<int>(meta.height), W = static_cast<int>(meta.width);
  const double pixels = static_cast<double>(bgr.rows) * bgr.cols;
  if (policy == ResizePolicy::kNone && limits.max_pixels > 0 && pixels > limits.max_pixels) {
    const double scale = std::sqrt(limits.max_pixels / pixels);
    const int w = std::max(1, static_cast<int>(std::floor(bgr.cols * scale)));
    const int h = std::max(1, static_cast<int>(std::floor(bgr.rows * scale)));
    display = ResizeTo(bgr, w, h);
    Log().info("image {}: {}x{} has more than --max-pixels {}: scaled to {}x{} (aspect kept)", name,
               bgr.cols, bgr.rows, limits.max_pixels, w, h);
  } else if (policy == ResizePolicy::kNone || (bgr.rows == H && bgr.cols == W)) {
    display = bgr;
  } else if (policy == ResizePolicy::kFit) {
    display = ResizeTo(bgr, W, H);
    Log().info("image {}: resized {}x{} -> {}x{} (fit)", name, bgr.cols, bgr.rows, W, H);
  } else {
    // Shorter side to size / crop_pct (longer side floored, as torchvision), then centre crop.
    const double target = std::floor(std::min(H, W) / meta.crop_pct + 1e-9);
    const double scale = target / std::min(bgr.rows, bgr.cols);
    const int rw = bgr.cols <= bgr.rows ? static_cast<int>(target)
                                        : static_cast<int>(std::floor(bgr.cols * scale));
    const int rh = bgr.rows < bgr.cols ? static_cast<int>(target)
                                       : static_cast<int>(std::floor(bgr.rows * scale));
    cv::Mat resized = ResizeTo(bgr, std::max(rw, W), std::max(rh, H));
    const int top = static_cast<int>(std::nearbyint((resized.rows - H) / 2.0));
    const int left = static_cast<int>(std::nearbyint((resized.cols - W) / 2.0));
    display = resized(cv::Rect(left, top, W, H)).clone();
    Log().info("image {}: resized {}x{} -> {}x{}, centre crop {}x{} (crop_pct {})", name,
               bgr.cols, bgr.rows, resized.cols, resized.rows, W, H, meta.crop_pct);
  }
  return display;
}

InputImage PrepareInput(const cv::Mat& bgr, const std::string& name, const Model& model,
                        ResizePolicy policy, const InputLimits& limits) {
  const ModelMetadata& meta = model.meta();
  const int H = static_cast<int>(meta.height), W = static_cast<int>(meta.width);
  InputImage input;
  input.path = name;
  input.original = bgr;
  input.display = ResizeForModel(bgr, name, meta, policy, limits);
  if (meta.channels == 1) Log().info("image {}: converted to grayscale for a 1-channel model", name);
  const double need = model.PassBytes(input.display.rows, input.display.cols, 1, /*with_grad=*/true);
  if (limits.budget.bytes > 0 && need > limits.budget.bytes)
    throw UsageError("image " + Quote(name) + " at " + std::to_string(input.display.cols) + "x" +
                     std::to_string(input.display.rows) + " needs about " + FormatBytes(need) +
                     " for one forward and backward pass of " + meta.name + ", more than the budget of " +
                     FormatBytes(limits.budget.bytes) + " (" + limits.budget.source + "); use --resize crop or fit "
                     "(the model's " + std::to_string(W) + "x" + std::to_string(H) +
                     " input) or --max-pixels N to scale it down");
  input.tensor = ImageToTensor(input.display, meta, model.device(), model.dtype());
  return input;
}

InputImage PrepareInput(const std::string& path, const Model& model, ResizePolicy policy,
                        const InputLimits& limits) {
  return PrepareInput(ReadImage(path), path, model, policy, limits);
}

}  // namespace netlens
