#include "netlens/techniques/superpixels.h"

#include <opencv2/imgproc.hpp>
#include <opencv2/ximgproc/slic.hpp>

#include <cmath>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/npy.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"

namespace netlens {
namespace {

// The picture the model sees as 8-bit BGR: the prepared display image, or (inputs given as
// tensors) the first three channels of the tensor stretched to [0, 255].
cv::Mat PictureOf(const TechniqueContext& ctx) {
  const torch::Tensor& x = ctx.input.tensor;
  if (!ctx.input.display.empty() && ctx.input.display.rows == x.size(2) && ctx.input.display.cols == x.size(3))
    return ctx.input.display;
  torch::Tensor t = x[0].detach().to(torch::kCPU, torch::kFloat64);
  t = t.size(0) >= 3 ? t.slice(0, 0, 3).flip(0) : t.slice(0, 0, 1).expand({3, -1, -1});
  const double lo = t.min().item<double>(), hi = t.max().item<double>();
  t = ((t - lo) / std::max(hi - lo, 1e-12) * 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  cv::Mat out(static_cast<int>(x.size(2)), static_cast<int>(x.size(3)), CV_8UC3, t.data_ptr<uint8_t>());
  return out.clone();
}

// Labels renumbered 0..k-1 in order of first appearance (raster order), on the CPU.
torch::Tensor Contiguous(const torch::Tensor& labels, int64_t& count) {
  const torch::Tensor flat = labels.to(torch::kCPU, torch::kLong).contiguous().flatten();
  auto unique = std::get<0>(torch::_unique(flat, /*sorted=*/true, /*return_inverse=*/false));
  torch::Tensor lookup = torch::full({unique.numel()}, -1, torch::kLong);
  const int64_t* v = flat.data_ptr<int64_t>();
  const int64_t* u = unique.data_ptr<int64_t>();
  auto* map = lookup.data_ptr<int64_t>();
  torch::Tensor out = torch::empty_like(flat);
  auto* o = out.data_ptr<int64_t>();
  count = 0;
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const int64_t slot = std::lower_bound(u, u + unique.numel(), v[i]) - u;
    if (map[slot] < 0) map[slot] = count++;
    o[i] = map[slot];
  }
  return out.view(labels.sizes());
}

torch::Tensor ReadMask(const std::string& file, int64_t h, int64_t w) {
  torch::Tensor t = ReadNpyFile(file, "feature mask " + Quote(file), 8.0 * static_cast<double>(h * w) + 4096,
                                "a mask of " + std::to_string(w) + "x" + std::to_string(h) + " labels");
  while (t.dim() > 2 && t.size(0) == 1) t = t.squeeze(0);
  if (t.dim() != 2 || t.size(0) != h || t.size(1) != w)
    throw UsageError("feature mask " + Quote(file) + " has shape " + c10::str(t.sizes()) + "; it must hold one label per pixel of the input, " +
                     std::to_string(h) + "x" + std::to_string(w) + " (H x W, optionally with leading 1s)");
  if (t.is_floating_point() && !torch::equal(t, t.round()))
    throw UsageError("feature mask " + Quote(file) + " holds fractional values; labels must be integers");
  return t.to(torch::kLong);
}

torch::Tensor GridLabels(int64_t h, int64_t w, int64_t segments) {
  const auto side = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(h * w) / segments))));
  const int64_t cols = (w + side - 1) / side;
  const torch::Tensor rows = torch::arange(h, torch::kLong).div(side, "floor").view({-1, 1});
  const torch::Tensor colsi = torch::arange(w, torch::kLong).div(side, "floor").view({1, -1});
  return rows * cols + colsi;
}

torch::Tensor SlicLabels(const cv::Mat& bgr, const std::string& method, int64_t segments, double compactness,
                         int& region) {
  const double area = static_cast<double>(bgr.rows) * bgr.cols;
  region = std::max(2, static_cast<int>(std::lround(std::sqrt(area / static_cast<double>(segments)))));
  cv::Mat lab;
  cv::cvtColor(bgr, lab, cv::COLOR_BGR2Lab);
  // SLIC on 8-bit Lab (OpenCV scales L to 0..255).
  const int algorithm = method == "slic" ? cv::ximgproc::SLIC : method == "slico" ? cv::ximgproc::SLICO : cv::ximgproc::MSLIC;
  auto slic = cv::ximgproc::createSuperpixelSLIC(lab, algorithm, region, static_cast<float>(compactness));
  slic->iterate(10);
  slic->enforceLabelConnectivity(25);
  cv::Mat labels;
  slic->getLabels(labels);
  torch::Tensor t = torch::from_blob(labels.ptr<int32_t>(), {labels.rows, labels.cols}, torch::kInt32);
  return t.to(torch::kLong).clone();
}

}  // namespace

OptionTable SuperpixelOptions() {
  return {
      {"segmentation", OptionType::kString,
       "superpixels: slico (adaptive compactness), slic, mslic (OpenCV ximgproc, on the picture the model sees) or "
       "grid (square tiles)",
       "slico", {"slic", "slico", "mslic", "grid"}},
      {"segments", OptionType::kInt, "about how many superpixels (the region size is sqrt(H*W / segments))", 50, {},
       2.0, 100000.0},
      {"compactness", OptionType::kFloat, "SLIC/MSLIC ruler: larger gives squarer superpixels (ignored by slico, grid)",
       10.0, {}, 0.01, 1000.0},
      {"feature_mask", OptionType::kString,
       "a .npy of integer labels, one per pixel (H x W), used instead of the segmentation (Captum's feature_mask)", Json(),
       {}, {}, {}, false, "FILE", true},
      {"baseline", OptionType::kString,
       "what a superpixel switched off shows: zero (Captum's default), black, blur, uniform, mean (its own mean "
       "colour) or an image file", "zero", {}, {}, {}, false, "", true},
      {"blur_sigma", OptionType::kFloat, "Gaussian sigma in pixels of the blur baseline", 10.0, {}, 0.1, 1000.0},
      {"batch_size", OptionType::kInt, "perturbed inputs per forward pass", 32, {}, 1.0, 4096.0},
      {"seed", OptionType::kInt, "seed of the sampling (and of the uniform baseline)", 0, {}, 0.0, 4294967295.0},
  };
}

Superpixels Segment(TechniqueContext& ctx, const std::string& technique) {
  const auto& p = ctx.params;
  const torch::Tensor& x = ctx.input.tensor;
  const int64_t h = x.size(2), w = x.size(3);
  torch::Tensor raw;
  std::string how;
  if (p.Has("feature_mask")) {
    raw = ReadMask(p.Str("feature_mask"), h, w);
    how = "feature mask " + p.Str("feature_mask");
  } else if (p.Str("segmentation") == "grid") {
    raw = GridLabels(h, w, p.Int("segments"));
    how = "grid of " + std::to_string(p.Int("segments")) + " tiles asked";
  } else {
    int region = 0;
    raw = SlicLabels(PictureOf(ctx), p.Str("segmentation"), p.Int("segments"), p.Float("compactness"), region);
    how = p.Str("segmentation") + " (region size " + std::to_string(region) + " px" +
          (p.Str("segmentation") == "slico" ? std::string(")") : ", compactness " + c10::str(p.Float("compactness")) + ")");
  }
  Superpixels sp;
  sp.labels = Contiguous(raw, sp.count);
  if (sp.count < 2) {
    const std::string remedy =
        p.Has("feature_mask")
            ? "give a mask with at least two different labels"
            : "raise --segments (now " + std::to_string(p.Int("segments")) + ")" +
                  (p.Str("segmentation") == "grid" ? std::string() : ", lower --compactness or use --segmentation grid");
    throw UsageError(technique + ": the " + how + " gives " + std::to_string(sp.count) +
                     " superpixel for the " + std::to_string(w) + "x" + std::to_string(h) +
                     " input, and one region switched on or off explains nothing: " + remedy);
  }
  sp.sizes = torch::bincount(sp.labels.flatten(), {}, sp.count);
  sp.labels = sp.labels.to(x.device());
  Log().info("{}: {} superpixels from {}, {} to {} pixels each", technique, sp.count, how,
             sp.sizes.min().item<int64_t>(), sp.sizes.max().item<int64_t>());
  ctx.metrics["superpixels"] = sp.count;
  return sp;
}

torch::Tensor ComposeInputs(const torch::Tensor& x, const torch::Tensor& baseline, const Superpixels& sp,
                            const torch::Tensor& z) {
  // z[:, labels] is n x H x W: each pixel takes its superpixel's switch.
  const torch::Tensor on = z.to(x.device(), x.scalar_type()).index_select(1, sp.labels.flatten())
                               .view({z.size(0), 1, x.size(2), x.size(3)});
  return (baseline + on * (x - baseline)).contiguous();
}

torch::Tensor SpreadOverSuperpixels(const torch::Tensor& values, const Superpixels& sp, const torch::Tensor& x) {
  const torch::Tensor per_pixel = values.to(x.device(), x.scalar_type()).index_select(0, sp.labels.flatten());
  return per_pixel.view({1, 1, x.size(2), x.size(3)}).expand_as(x).contiguous();
}

std::vector<Artifact> SuperpixelArtifacts(const TechniqueContext& ctx, const Superpixels& sp, const std::string& name,
                                          const torch::Tensor& values) {
  const cv::Mat bgr = PictureOf(ctx);
  torch::Tensor rgb = torch::from_blob(bgr.data, {bgr.rows, bgr.cols, 3}, torch::kUInt8)
                          .to(torch::kFloat32).div(255).flip(2).permute({2, 0, 1}).contiguous();
  const torch::Tensor l = sp.labels.to(torch::kCPU);
  torch::Tensor border = torch::zeros({l.size(0), l.size(1)}, torch::kBool);
  border.slice(1, 0, -1) |= l.slice(1, 0, -1) != l.slice(1, 1);
  border.slice(0, 0, -1) |= l.slice(0, 0, -1) != l.slice(0, 1);
  const torch::Tensor yellow = torch::tensor({1.0f, 0.9f, 0.0f}).view({3, 1, 1});
  rgb = torch::where(border.unsqueeze(0), yellow, rgb);
  Artifact picture{name + "_segments", rgb.unsqueeze(0), Artifact::Kind::kPicture};
  Artifact labels{name + "_superpixels", l.to(torch::kFloat32).view({1, 1, l.size(0), l.size(1)}), Artifact::Kind::kRawOnly};
  return {{name, SpreadOverSuperpixels(values, sp, ctx.input.tensor)}, picture, labels};
}

torch::Tensor SuperpixelBaseline(TechniqueContext& ctx, const Superpixels& sp) {
  const torch::Tensor& x = ctx.input.tensor;
  if (ctx.params.Str("baseline") != "mean") return BaselineOf(ctx, ctx.params.Str("baseline"));
  // Each superpixel filled with its own mean colour (the `lime` package's hide_color=None).
  const torch::Tensor flat = x[0].reshape({x.size(1), -1});                      // C x HW
  const torch::Tensor onehot = at::one_hot(sp.labels.flatten(), sp.count).to(x.scalar_type());  // HW x k
  const torch::Tensor means = flat.matmul(onehot) / sp.sizes.to(x.device(), x.scalar_type());  // C x k
  return means.index_select(1, sp.labels.flatten()).view_as(x).contiguous();
}

SuperpixelEvaluation EvaluateSuperpixels(TechniqueContext& ctx, const torch::Tensor& baseline, const Superpixels& sp,
                                         const torch::Tensor& z, int64_t batch_size, bool distances) {
  torch::NoGradGuard no_grad;
  const torch::Tensor x = ctx.input.tensor.flatten();
  std::vector<torch::Tensor> scores, cosine, euclidean;
  for (int64_t start = 0; start < z.size(0); start += batch_size) {
    const torch::Tensor chunk = z.slice(0, start, std::min(z.size(0), start + batch_size));
    const torch::Tensor inputs = ComposeInputs(ctx.input.tensor, baseline, sp, chunk);
    scores.push_back(ctx.model.Logits(inputs).select(1, ctx.target).to(torch::kCPU, torch::kFloat64));
    if (!distances) continue;
    // In the model's dtype (Captum computes them in float32), and without BLAS: a BLAS call between
    // two forwards wakes its own thread pool, which then spins against LibTorch's (1.5x the time
    // of the forwards on a 2-core machine with OpenBLAS).
    const torch::Tensor flat = inputs.flatten(1);
    const torch::Tensor cos = (flat * x).sum(1) / (flat.norm(2, 1) * x.norm()).clamp_min(1e-8);
    cosine.push_back((1 - cos).to(torch::kCPU, torch::kFloat64));
    euclidean.push_back((flat - x).norm(2, 1).to(torch::kCPU, torch::kFloat64));
  }
  if (!distances) return {torch::cat(scores), torch::Tensor(), torch::Tensor()};
  return {torch::cat(scores), torch::cat(cosine), torch::cat(euclidean)};
}

}  // namespace netlens
