// Attention-based maps of vision transformers, from the post-softmax attention the lens taps in
// the graph (model/attention_tap.h; any traced or scripted self-attention, hand-written or
// nn.MultiheadAttention's):
//   attention-rollout        Abnar & Zuidema 2020 (jacobgil/vit-explain's form): per block the
//                            heads fused (mean, max or min), the lowest `discard` fraction of each
//                            image's fused entries set to 0 (the class token's column kept),
//                            a = (fused + I) / 2 with rows normalized to sum 1, R = a R over the
//                            blocks from R = I; the map is the class token's row over the patches.
//   transformer-attribution  Chefer, Gur & Wolf 2021 (ICCV, "Generic Attention-model
//                            Explainability"): per block cam = mean_h (dA ⊙ A)^+ with dA the target
//                            logit's gradient at the attention, R = R + cam R from R = I; the map
//                            is the class token's row over the patches.
//   attention-heads          one block's attention from one query token (the class token, or a
//                            patch I,J) to every patch, per head: a grid of the heads over the
//                            image, the heads' mean as a map, the raw B x H x h x w array, and each
//                            head's entropy and (from a patch) mean attention distance in the
//                            manifest (Dosovitskiy et al. 2021, Fig. 7).
// The maps are layer maps on the token grid (model/layout.h), rendered upsampled.
#include "netlens/techniques/attention.h"

#include <opencv2/imgproc.hpp>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/figure.h"
#include "netlens/image/render.h"
#include "netlens/model/layout.h"

namespace netlens {
namespace {

struct Attentions {
  std::vector<torch::Tensor> tapped;  // per block as the graph computes it, on the autograd graph
  std::vector<torch::Tensor> maps;    // the same as B x H x T x T (views)
  torch::Tensor output;
  SpatialLayout layout;             // of the T tokens over the input
};

// The model's self-attention maps for the input, or UsageError naming what fits instead. A model
// qualifies when its tapped attentions all have the same T x T and one of its layers holds T
// tokens (N x T x C): Swin's window attention (T = a window's positions, no token layer of T) and
// CNNs do not.
Attentions TapAttention(TechniqueContext& ctx, const std::string& technique) {
  const torch::Tensor& x = ctx.input.tensor;
  // A scripted nn.MultiheadAttention computes a softmax only off its fused fast path, which it
  // leaves when the query requires grad.
  const torch::Tensor input = x.detach().clone().requires_grad_(true);
  torch::AutoGradMode grad(true);
  Lens::Attention a = ctx.model.lens().ForwardAttention(input);
  const int64_t batch = x.size(0);
  const std::string fits = "; for this model use gradcam, layercam or hirescam (they read token and channels-last "
                           "layers), or saliency";
  if (a.maps.empty())
    throw UsageError(technique + " needs a vision transformer's self-attention (softmax over token pairs); " +
                     ctx.model.meta().name + " computes none" + fits);
  const int64_t T = a.maps[0].size(-1);
  bool token_layer = false;
  for (const auto& l : ctx.model.lens().layers())
    token_layer = token_layer || (l.capturable && l.shape.size() == 3 && l.shape[1] == T);
  Attentions out;
  for (const torch::Tensor& m : a.maps) {
    const bool same = m.size(-1) == T && m.numel() % (batch * T * T) == 0;
    if (!same || !token_layer)
      throw UsageError(technique + " needs attention over all of the image's tokens; " + ctx.model.meta().name +
                       "'s attention maps are " + c10::str(m.sizes()) +
                       (token_layer ? " (not all over the same tokens)" : " with no layer of that many tokens (windowed attention, as Swin's)") +
                       fits);
    out.tapped.push_back(m);
    out.maps.push_back(m.reshape({batch, -1, T, T}));
  }
  out.output = a.output;
  out.layout = InferSpatialLayout({batch, T, 1}, x.size(2), x.size(3));
  if (out.layout.kind != SpatialLayout::Kind::kTokens)
    throw UsageError(technique + ": " + std::to_string(T) + " tokens do not lay out as a grid over the input: " +
                     out.layout.why_not);
  Log().info("{}: {} attention map(s), {} heads, {} tokens read as {}", technique, out.maps.size(),
             out.maps[0].size(1), T, out.layout.Describe());
  ctx.metrics["attention_blocks"] = out.maps.size();
  ctx.metrics["heads"] = out.maps[0].size(1);
  ctx.metrics["token_layout"] = out.layout.Describe();
  return out;
}

// The class token's row of R (B x T x T) over the patches as B x 1 x h x w.
torch::Tensor ClassRowMap(const torch::Tensor& R, const SpatialLayout& layout) {
  return R.select(1, 0).narrow(1, layout.prefix, layout.h * layout.w).reshape({R.size(0), 1, layout.h, layout.w});
}

std::vector<Artifact> RunRollout(TechniqueContext& ctx) {
  const Params& p = ctx.params;
  const std::string fusion = p.Str("head_fusion");
  const double discard = p.Float("discard");
  Attentions a = TapAttention(ctx, "attention-rollout");
  torch::NoGradGuard no_grad;
  const int64_t B = a.maps[0].size(0), T = a.maps[0].size(-1);
  const torch::Tensor eye = torch::eye(T, a.maps[0].options()).expand({B, T, T});
  torch::Tensor R = eye.clone();
  for (const torch::Tensor& A : a.maps) {
    torch::Tensor fused = fusion == "mean" ? A.detach().mean(1)
                          : fusion == "max" ? std::get<0>(A.detach().max(1))
                                            : std::get<0>(A.detach().min(1));
    if (discard > 0) {
      torch::Tensor flat = fused.reshape({B, T * T});
      const int64_t k = static_cast<int64_t>(static_cast<double>(T * T) * discard);
      if (k > 0) {
        torch::Tensor keep = torch::ones_like(flat);
        keep.scatter_(1, std::get<1>(flat.topk(k, -1, /*largest=*/false)), 0.0);
        keep.select(1, 0).fill_(1);  // the class token's own entry is kept, as vit-explain does
        flat = flat * keep;
      }
      fused = flat.view({B, T, T});
    }
    torch::Tensor step = (fused + eye) / 2;
    step = step / step.sum(-1, /*keepdim=*/true);
    R = torch::bmm(step, R);
  }
  ctx.metrics["head_fusion"] = fusion;
  ctx.metrics["discard"] = discard;
  return {Artifact{"attention_rollout", ClassRowMap(R, a.layout), Artifact::Kind::kLayerMap, "attention"}};
}

std::vector<Artifact> RunTransformerAttribution(TechniqueContext& ctx) {
  Attentions a = TapAttention(ctx, "transformer-attribution");
  const torch::Tensor target = a.output.select(1, ctx.target).sum();
  // With respect to the tensors the graph goes on with (a reshaped view of one is off the path).
  const std::vector<torch::Tensor> grads = torch::autograd::grad({target}, a.tapped, {}, /*retain_graph=*/false,
                                                                 /*create_graph=*/false, /*allow_unused=*/true);
  torch::NoGradGuard no_grad;
  const int64_t B = a.maps[0].size(0), T = a.maps[0].size(-1);
  torch::Tensor R = torch::eye(T, a.maps[0].options()).expand({B, T, T}).clone();
  for (size_t i = 0; i < a.maps.size(); ++i) {
    if (!grads[i].defined()) continue;  // an attention the target does not depend on adds nothing
    const torch::Tensor cam = (grads[i].reshape(a.maps[i].sizes()) * a.maps[i].detach()).clamp_min(0).mean(1);
    R = R + torch::bmm(cam, R);
  }
  return {Artifact{"transformer_attribution", ClassRowMap(R, a.layout), Artifact::Kind::kLayerMap, "attention"}};
}

// The token a query option names: "cls" (the first prefix token) or "I,J" (the patch at row I,
// column J of the grid).
int64_t QueryToken(const std::string& query, const SpatialLayout& layout, std::string* described) {
  if (query == "cls") {
    if (layout.prefix == 0)
      throw UsageError("attention-heads: --query cls needs a class token, and these " +
                       std::to_string(layout.h * layout.w) + " tokens are all patches (" + layout.Describe() +
                       "); give a patch as --query I,J (row, column of the " + std::to_string(layout.h) + "x" +
                       std::to_string(layout.w) + " grid)");
    *described = "the class token";
    return 0;
  }
  const std::vector<std::string> parts = Split(query, ',');
  int64_t i = -1, j = -1;
  try {
    if (parts.size() == 2) {
      i = std::stoll(Trim(parts[0]));
      j = std::stoll(Trim(parts[1]));
    }
  } catch (const std::exception&) {
    i = j = -1;
  }
  if (i < 0 || j < 0 || i >= layout.h || j >= layout.w)
    throw UsageError("attention-heads: --query " + Quote(query) + " is neither cls nor a patch I,J within the " +
                     std::to_string(layout.h) + "x" + std::to_string(layout.w) + " token grid (e.g. --query " +
                     std::to_string(layout.h / 2) + "," + std::to_string(layout.w / 2) + ")");
  *described = "patch " + std::to_string(i) + "," + std::to_string(j);
  return layout.prefix + i * layout.w + j;
}

std::vector<Artifact> RunAttentionHeads(TechniqueContext& ctx) {
  const Params& p = ctx.params;
  Attentions a = TapAttention(ctx, "attention-heads");
  torch::NoGradGuard no_grad;
  const int64_t blocks = static_cast<int64_t>(a.maps.size());
  const int64_t asked = p.Int("block");
  const int64_t block = asked < 0 ? blocks + asked : asked;
  if (block < 0 || block >= blocks)
    throw UsageError("attention-heads: --block " + std::to_string(asked) + " is out of range: the model has " +
                     std::to_string(blocks) + " attention blocks (0.." + std::to_string(blocks - 1) +
                     ", or -1 for the last)");
  const SpatialLayout& layout = a.layout;
  std::string query_name;
  const int64_t query = QueryToken(p.Str("query"), layout, &query_name);
  // B x H x (h*w): the query's row over the patches.
  const torch::Tensor row = a.maps[block].detach().select(2, query).narrow(2, layout.prefix, layout.h * layout.w);
  const int64_t B = row.size(0), heads = row.size(1);
  const torch::Tensor maps = row.reshape({B, heads, layout.h, layout.w}).contiguous();

  // Per head: the entropy of the query's whole attention row (in nats) and, from a patch, the
  // attention-weighted distance to the other patches in pixels of the input.
  const torch::Tensor full = a.maps[block].detach()[0].select(1, query).to(torch::kCPU, torch::kFloat64);  // H x T
  const torch::Tensor entropy = -(full * full.clamp_min(1e-300).log()).sum(1);
  torch::Tensor distance;
  if (query >= layout.prefix) {
    const int64_t qi = (query - layout.prefix) / layout.w, qj = (query - layout.prefix) % layout.w;
    const double ph = static_cast<double>(ctx.input.tensor.size(2)) / layout.h;
    const double pw = static_cast<double>(ctx.input.tensor.size(3)) / layout.w;
    const torch::Tensor ii = torch::arange(layout.h, torch::kFloat64).view({-1, 1}).expand({layout.h, layout.w});
    const torch::Tensor jj = torch::arange(layout.w, torch::kFloat64).view({1, -1}).expand({layout.h, layout.w});
    const torch::Tensor d = ((ii - qi).mul(ph).pow(2) + (jj - qj).mul(pw).pow(2)).sqrt().flatten();
    const torch::Tensor patches = maps[0].to(torch::kCPU, torch::kFloat64).reshape({heads, -1});
    distance = (patches * d).sum(1) / patches.sum(1).clamp_min(1e-300);
  }

  const cv::Mat& display = ctx.input.display;
  std::vector<cv::Mat> tiles;
  std::vector<std::string> captions;
  Json per_head = Json::array();
  for (int64_t h = 0; h < heads; ++h) {
    const torch::Tensor up = CamToDisplay(maps[0][h].to(torch::kCPU, torch::kFloat64), display, /*nearest=*/true);
    cv::Mat tile = Overlay(display, HeatImage(up));
    if (query >= layout.prefix) {  // the query patch, outlined
      const int64_t qi = (query - layout.prefix) / layout.w, qj = (query - layout.prefix) % layout.w;
      const double sy = static_cast<double>(display.rows) / layout.h, sx = static_cast<double>(display.cols) / layout.w;
      cv::rectangle(tile, cv::Point(static_cast<int>(qj * sx), static_cast<int>(qi * sy)),
                    cv::Point(static_cast<int>((qj + 1) * sx) - 1, static_cast<int>((qi + 1) * sy) - 1),
                    cv::Scalar(255, 255, 255), 1);
    }
    tiles.push_back(tile);
    char caption[96];
    if (distance.defined())
      std::snprintf(caption, sizeof(caption), "head %lld: H %.2f, %.0f px", static_cast<long long>(h),
                    entropy[h].item<double>(), distance[h].item<double>());
    else
      std::snprintf(caption, sizeof(caption), "head %lld: H %.2f", static_cast<long long>(h), entropy[h].item<double>());
    captions.push_back(caption);
    Json entry = {{"head", h}, {"entropy", entropy[h].item<double>()}};
    if (distance.defined()) entry["mean_distance_px"] = distance[h].item<double>();
    per_head.push_back(entry);
  }
  const cv::Mat grid = Captioned(GridImage(tiles, captions),
                                 "block " + std::to_string(block) + " of " + std::to_string(blocks) + ", from " +
                                     query_name + ", per head");
  Log().info("attention-heads: block {} of {}, {} heads, from {}", block, blocks, heads, query_name);
  ctx.metrics["block"] = block;
  ctx.metrics["query"] = {{"token", query}, {"name", query_name}};
  ctx.metrics["per_head"] = per_head;
  const std::string tag = "block" + std::to_string(block);
  Artifact mean{"attention_heads_mean_" + tag, maps.mean(1, /*keepdim=*/true), Artifact::Kind::kLayerMap, "attention"};
  mean.nearest = true;
  return {mean, Artifact{"attention_heads_" + tag, maps, Artifact::Kind::kRawOnly, "attention"},
          Artifact{"attention_heads_grid_" + tag, FigureTensor(grid), Artifact::Kind::kFigure, "attention"}};
}

}  // namespace

TechniqueInfo AttentionRolloutTechnique() {
  OptionTable options{
      {"head_fusion", OptionType::kString, "how a block's heads are fused", "mean", {"mean", "max", "min"}},
      {"discard", OptionType::kFloat, "fraction of each block's lowest fused attentions set to 0", 0.9, {}, 0.0, 0.99},
  };
  return {"attention-rollout", "attention rollout of a vision transformer (Abnar & Zuidema)", options, RunRollout,
          BatchPass::kNone};
}

TechniqueInfo AttentionHeadsTechnique() {
  OptionTable options{
      {"block", OptionType::kInt, "the attention block, from 0 (negative: from the last, -1 the last)", -1, {},
       -1000.0, 1000.0},
      {"query", OptionType::kString, "the token whose attention is shown: cls (the class token) or I,J (a patch)",
       "cls"},
  };
  return {"attention-heads", "one block's attention from one token, head by head, of a vision transformer", options,
          RunAttentionHeads, BatchPass::kNone};
}

TechniqueInfo TransformerAttributionTechnique() {
  return {"transformer-attribution",
          "gradient-weighted attention rollout of a vision transformer (Chefer et al. 2021)", OptionTable{},
          RunTransformerAttribution, BatchPass::kNone};
}

}  // namespace netlens
