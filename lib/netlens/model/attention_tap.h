// netlens::attention_tap(Tensor x) -> Tensor
//
// The lens puts this op after every softmax of a graph (inside control flow too: a scripted
// nn.MultiheadAttention computes its softmax in one branch of its fast-path test) to read the
// attention probabilities a transformer computes, whatever form its attention takes in the traced
// or scripted graph. Forward: a copy of x, recorded in the calling thread's AttentionRecording
// when x has the shape of self-attention (at least 3 dimensions, the last two equal: ... x T x T);
// other softmaxes (a classifier's) pass unrecorded. Backward: the copy's (the identity), so a
// gradient with respect to a recorded tensor is the gradient at the attention.
#pragma once

#include <torch/types.h>

#include <vector>

namespace netlens {

constexpr const char* kAttentionTapOp = "netlens::attention_tap";

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
