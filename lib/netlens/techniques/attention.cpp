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
// Both are 1 x 1 x h x w layer maps on the token grid (model/layout.h), rendered upsampled.
#include "netlens/techniques/attention.h"

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
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

}  // namespace

TechniqueInfo AttentionRolloutTechnique() {
  OptionTable options{
      {"head_fusion", OptionType::kString, "how a block's heads are fused", "mean", {"mean", "max", "min"}},
      {"discard", OptionType::kFloat, "fraction of each block's lowest fused attentions set to 0", 0.9, {}, 0.0, 0.99},
  };
  return {"attention-rollout", "attention rollout of a vision transformer (Abnar & Zuidema)", options, RunRollout,
          BatchPass::kNone};
}

TechniqueInfo TransformerAttributionTechnique() {
  return {"transformer-attribution",
          "gradient-weighted attention rollout of a vision transformer (Chefer et al. 2021)", OptionTable{},
          RunTransformerAttribution, BatchPass::kNone};
}

}  // namespace netlens
