// The pieces of evaluate's model-randomization sanity check (Adebayo et al., "Sanity Checks for
// Saliency Maps", NeurIPS 2018): rank correlation and SSIM between maps, and the cascading
// re-initialization of a model's parameters from the output back to the input.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/render.h"
#include "netlens/techniques/evaluate.h"

namespace netlens {
namespace {

// Ranks 1..n of the values, ties sharing their average rank.
std::vector<double> AverageRanks(const torch::Tensor& t) {
  const torch::Tensor flat = t.detach().to(torch::kCPU, torch::kFloat64).reshape({-1}).contiguous();
  const int64_t n = flat.numel();
  const double* v = flat.data_ptr<double>();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] < v[b]; });
  std::vector<double> rank(n);
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j + 1 < n && v[order[j + 1]] == v[order[i]]) ++j;
    const double average = (static_cast<double>(i) + static_cast<double>(j)) / 2 + 1;
    for (int64_t k = i; k <= j; ++k) rank[order[k]] = average;
    i = j + 1;
  }
  return rank;
}

}  // namespace

double Spearman(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() != b.numel())
    throw InternalError("Spearman: " + std::to_string(a.numel()) + " vs " + std::to_string(b.numel()) + " values");
  const std::vector<double> ra = AverageRanks(a), rb = AverageRanks(b);
  const double n = static_cast<double>(ra.size()), mean = (n + 1) / 2;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - mean) * (rb[i] - mean);
    saa += (ra[i] - mean) * (ra[i] - mean);
    sbb += (rb[i] - mean) * (rb[i] - mean);
  }
  return saa == 0 || sbb == 0 ? 0 : sab / std::sqrt(saa * sbb);
}

double Ssim(const torch::Tensor& a, const torch::Tensor& b) {
  constexpr double kSigma = 1.5, kC1 = 0.01 * 0.01, kC2 = 0.03 * 0.03;
  constexpr int64_t kRadius = 5;  // scipy's truncate 3.5: int(3.5 * 1.5 + 0.5)
  if (a.sizes() != b.sizes() || a.dim() != 2 || a.size(0) < 2 * kRadius + 1 || a.size(1) < 2 * kRadius + 1)
    throw UsageError("SSIM needs two maps of the same size, at least 11 x 11; got " + c10::str(a.sizes()) +
                     " and " + c10::str(b.sizes()));
  torch::Tensor g = torch::arange(-kRadius, kRadius + 1, torch::kFloat64);
  g = torch::exp(-g * g / (2 * kSigma * kSigma));
  g = g / g.sum();
  const torch::Tensor window = torch::outer(g, g).view({1, 1, 2 * kRadius + 1, 2 * kRadius + 1});
  const auto filter = [&](const torch::Tensor& t) { return torch::conv2d(t, window); };  // valid: the crop
  const torch::Tensor x = a.detach().to(torch::kCPU, torch::kFloat64).view({1, 1, a.size(0), a.size(1)});
  const torch::Tensor y = b.detach().to(torch::kCPU, torch::kFloat64).view({1, 1, b.size(0), b.size(1)});
  const torch::Tensor mx = filter(x), my = filter(y);
  const torch::Tensor vx = filter(x * x) - mx * mx, vy = filter(y * y) - my * my, cxy = filter(x * y) - mx * my;
  const torch::Tensor s = ((2 * mx * my + kC1) * (2 * cxy + kC2)) / ((mx * mx + my * my + kC1) * (vx + vy + kC2));
  return s.mean().item<double>();
}

torch::Tensor SanityMap(const Artifact& a, int64_t height, int64_t width) {
  if (a.kind == Artifact::Kind::kInputAttribution)
    return a.tensor.detach().to(torch::kCPU, torch::kFloat64)[0].abs().sum(0);
  return RankingMap(a, height, width);
}

CascadingRandomization::CascadingRandomization(Model& model, uint64_t seed) : model_(model), seed_(seed) {
  // Forward order of each module (the order of its first op), then every module that owns
  // parameters directly, last in forward order first. A module with buffers only (a
  // normalization step's mean and std) holds nothing learned and stays (Quantus re-draws the
  // layers that have reset_parameters); buffers of a layer with parameters (BatchNorm's
  // running statistics) are re-drawn with it.
  std::map<std::string, int64_t> order;
  for (const auto& info : model.lens().layers()) order[info.path] = info.order;
  std::vector<std::pair<int64_t, std::string>> owners;
  int64_t unused = 0;
  for (const auto& item : model.module().named_modules()) {
    if (item.name.empty()) continue;  // the model itself: see below
    if (item.value.named_parameters(/*recurse=*/false).size() == 0) continue;
    auto it = order.find(item.name);
    if (it == order.end() || it->second < 0) {
      ++unused;  // never runs in forward: re-drawing it changes nothing
      continue;
    }
    owners.push_back({it->second, item.name});
  }
  std::sort(owners.begin(), owners.end(), std::greater<>());
  for (const auto& o : owners) layers_.push_back(o.second);
  // Parameters of the model itself (a functional forward): where they are used is unknown, so last.
  if (model.module().named_parameters(/*recurse=*/false).size() > 0) layers_.push_back("");
  if (layers_.empty()) throw UsageError("randomization: the model has no layer with parameters to re-draw");
  if (unused > 0) Log().info("randomization: {} module(s) with parameters are not run by forward and are left as they are", unused);
}

CascadingRandomization::~CascadingRandomization() {
  torch::NoGradGuard no_grad;
  for (auto& [live, original] : saved_) live.copy_(original);
  if (!saved_.empty()) model_.ParametersChanged();
}

void CascadingRandomization::Randomize(size_t i) {
  torch::NoGradGuard no_grad;
  torch::jit::Module module = model_.module();
  if (!layers_.at(i).empty())
    for (const auto& part : Split(layers_[i], '.')) module = module.attr(part).toModule();
  auto generator = at::detail::createCPUGenerator(seed_ * 1000003 + i);
  // fan_in of the layer's first weight of dimension >= 2 bounds its biases too (PyTorch's
  // Conv and Linear reset_parameters).
  double bound = 0;
  for (const auto& p : module.named_parameters(/*recurse=*/false))
    if (p.value.dim() >= 2 && bound == 0) bound = 1 / std::sqrt(static_cast<double>(p.value[0].numel()));
  const auto redraw = [&](torch::Tensor live, const std::string& name) {
    saved_.push_back({live, live.clone()});
    torch::Tensor fresh;
    if (live.dim() >= 2 || (bound > 0 && name == "bias"))
      fresh = (torch::rand(live.sizes(), generator, torch::kFloat64) * 2 - 1) *
              (live.dim() >= 2 ? 1 / std::sqrt(static_cast<double>(live[0].numel())) : bound);
    else if (name == "weight" || name == "running_var")
      fresh = torch::ones(live.sizes(), torch::kFloat64);
    else
      fresh = torch::zeros(live.sizes(), torch::kFloat64);
    live.copy_(fresh);
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) redraw(p.value, p.name);
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    if (b.value.is_floating_point()) redraw(b.value, b.name);
  model_.ParametersChanged();
}

}  // namespace netlens
