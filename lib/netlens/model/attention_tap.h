// netlens::attention_tap(Tensor x) -> Tensor
//
// The lens puts this op after every softmax of a graph (inside control flow too: a scripted
// nn.MultiheadAttention computes its softmax in one branch of its fast-path test) to read the
// attention probabilities a transformer computes, whatever form its attention takes in the traced
// or scripted graph. Forward: a copy of x, recorded in the calling thread's AttentionRecording
// when x has the shape of self-attention (at least 3 dimensions, the last two equal: ... x T x T);
// other softmaxes (a classifier's) pass unrecorded. Backward: the copy's (the identity), so a
// gradient with respect to a recorded tensor is the gradient at the attention.
//
// netlens::attention_sdpa(query, key, value, attn_mask?, is_causal, scale?, lrp_eps) -> (out, attention)
//
// A fused scaled_dot_product_attention (LibTorch 2.x's aten::scaled_dot_product_attention, 1.13's
// aten::_scaled_dot_product_attention) computes its softmax inside one kernel, so there is nothing
// to tap. DecomposeFusedAttention replaces each with this op: softmax(q kᵀ · scale + mask) v written
// out in differentiable ATen ops (scale 1/sqrt(E) unless given; a boolean mask keeps where true,
// a float mask is added; is_causal masks j > i; fewer key/value heads than query heads are
// repeated, as enable_gqa does), its attention recorded as attention_tap records it. Dropout is
// left out: netlens runs models in eval mode. With lrp_eps >= 0 (the LRP graph, model/lrp.h) the
// attention is held constant and the product A @ V carries the epsilon rule of a sum.
#pragma once

#include <torch/types.h>

namespace torch::jit {
struct Graph;
}

#include <vector>

namespace netlens {

constexpr const char* kAttentionTapOp = "netlens::attention_tap";
constexpr const char* kAttentionSdpaOp = "netlens::attention_sdpa";

// Replaces every fused scaled-dot-product attention of `graph` (inside control flow too) with
// netlens::attention_sdpa (`lrp_eps` < 0: ordinary gradients); returns how many.
int64_t DecomposeFusedAttention(torch::jit::Graph& graph, double lrp_eps = -1);

void EnsureAttentionTapRegistered();

// What the op calls (appends to the thread's recording, if any).
void RecordAttention(const torch::Tensor& t);

// Records what attention_tap ops compute on this thread while it lives (in execution order; a
// branch not taken records nothing). One recording per thread at a time.
class AttentionRecording {
 public:
  AttentionRecording();
  ~AttentionRecording();
  AttentionRecording(const AttentionRecording&) = delete;
  AttentionRecording& operator=(const AttentionRecording&) = delete;
  const std::vector<torch::Tensor>& tensors() const { return tensors_; }

 private:
  friend void RecordAttention(const torch::Tensor& t);
  std::vector<torch::Tensor> tensors_;
  AttentionRecording* previous_ = nullptr;
};

}  // namespace netlens
