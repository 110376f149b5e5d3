// Occlusion (Zeiler & Fergus 2014) with Captum's semantics: a window (c, h, w) slides over all
// non-batch dims with stride (sc, sh, sw); per dim there are ceil((D - w) / s) + 1 windows starting
// at k * s, the last clipped at the border. Each input element gets the mean of
// f_t(x) - f_t(x_occluded) over the windows that cover it. Occluded copies are evaluated in
// batches without autograd.
//
// mode probability (the original netlens): non-overlapping tiles (stride = window). The rendered
// map `occlusion_drop` holds p_t(x) - p_t(x with the tile occluded), the fall of the target's
// softmax probability (red = the tile matters, as in every other map); the raw arrays
// `occlusion_probability` (p_t with each tile occluded) and `occlusion_argmax` (the arg-max class
// under each occlusion) come beside it.
#include <cmath>

#include "netlens/core/errors.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"

namespace netlens {
namespace {

// window / stride options: one value (spatial, all channels), two (h, w) or three (c, h, w).
std::vector<int64_t> Shape3(const std::vector<int64_t>& v, int64_t channels, const char* what) {
  if (v.size() == 1) return {channels, v[0], v[0]};
  if (v.size() == 2) return {channels, v[0], v[1]};
  if (v.size() == 3) return v;
  throw UsageError(std::string("occlusion: ") + what + " takes 1, 2 or 3 values (c,h,w)");
}

}  // namespace

TechniqueInfo OcclusionTechnique() {
  OptionTable options{
      {"window", OptionType::kIntList, "occluding window: S, H,W or C,H,W (default: all channels)",
       Json::array({16}), {}, 1.0, 100000.0},
      {"stride", OptionType::kIntList, "window stride: S, H,W or C,H,W (each <= the window)",
       Json::array({8}), {}, 1.0, 100000.0},
      {"baseline_value", OptionType::kFloat, "value of occluded elements (normalized input space)", 0.0},
      {"mode", OptionType::kString, "attribution (Captum) or probability (original netlens)",
       "attribution", {"attribution", "probability"}},
      {"batch_size", OptionType::kInt, "occluded copies per forward pass", 32, {}, 1.0, 4096.0},
  };
  return {"occlusion", "occlusion: output change when patches of the input are masked", options,
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const torch::Tensor& x = ctx.input.tensor;
            const std::vector<int64_t> dims{x.size(1), x.size(2), x.size(3)};
            const bool probability = p.Str("mode") == "probability";
            const auto window = Shape3(p.Ints("window"), dims[0], "window");
            const auto stride = probability ? window : Shape3(p.Ints("stride"), dims[0], "stride");
            std::vector<int64_t> counts(3);
            for (int d = 0; d < 3; ++d) {
              if (window[d] > dims[d])
                throw UsageError("occlusion: window " + std::to_string(window[d]) + " exceeds the input size " + std::to_string(dims[d]));
              if (stride[d] > window[d])
                throw UsageError("occlusion: stride must be <= the window in every dim");
              counts[d] = static_cast<int64_t>(std::ceil(static_cast<double>(dims[d] - window[d]) / stride[d])) + 1;
            }
            const int64_t total = counts[0] * counts[1] * counts[2];
            const int64_t batch = p.Int("batch_size");
            const double base = p.Float("baseline_value");
            torch::NoGradGuard no_grad;
            const torch::Tensor reference = ctx.model.Logits(x);
            torch::Tensor attr = torch::zeros_like(x), cover = torch::zeros_like(x);
            std::vector<torch::Tensor> scores, argmax;
            for (int64_t start = 0; start < total; start += batch) {
              const int64_t n = std::min(batch, total - start);
              torch::Tensor masks = torch::zeros({n, dims[0], dims[1], dims[2]}, x.options());
              for (int64_t i = 0; i < n; ++i) {
                int64_t idx = start + i;
                const int64_t kw = idx % counts[2], kh = (idx / counts[2]) % counts[1], kc = idx / (counts[1] * counts[2]);
                masks[i].slice(0, kc * stride[0], kc * stride[0] + window[0])
                    .slice(1, kh * stride[1], kh * stride[1] + window[1])
                    .slice(2, kw * stride[2], kw * stride[2] + window[2])
                    .fill_(1);
              }
              const torch::Tensor occluded = x * (1 - masks) + base * masks;
              const torch::Tensor logits = ctx.model.Logits(occluded);
              if (probability) {
                scores.push_back(torch::softmax(logits.to(torch::kFloat64), 1).select(1, ctx.target));
                argmax.push_back(logits.argmax(1));
              } else {
                const torch::Tensor diff = reference.select(1, ctx.target) - logits.select(1, ctx.target);
                attr += (diff.view({n, 1, 1, 1}) * masks).sum(0, true);
                cover += masks.sum(0, true);
              }
            }
            ctx.metrics["occlusions"] = total;
            if (probability) {
              const auto shape = std::vector<int64_t>{1, 1, counts[1] * counts[0], counts[2]};
              const torch::Tensor prob = torch::cat(scores).view(shape);
              const double clean =
                  torch::softmax(reference.to(torch::kFloat64), 1)[0][ctx.target].item<double>();
              // The drop is what is rendered, so that red means "important" as in every other map.
              Artifact drop{"occlusion_drop", (clean - prob).to(x.scalar_type()), Artifact::Kind::kLayerMap, ""};
              drop.nearest = true;
              Artifact raw{"occlusion_probability", prob.to(x.scalar_type()), Artifact::Kind::kRawOnly, ""};
              Artifact cls{"occlusion_argmax", torch::cat(argmax).view(shape).to(torch::kFloat32),
                           Artifact::Kind::kRawOnly, ""};
              ctx.metrics["clean_probability"] = clean;
              return std::vector<Artifact>{drop, raw, cls};
            }
            return std::vector<Artifact>{{"occlusion", attr / cover.clamp_min(1)}};
          }, BatchPass::kForward};
}

}  // namespace netlens
