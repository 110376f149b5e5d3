#include "netlens/model/attention_tap.h"

#include <torch/library.h>

namespace netlens {
namespace {

thread_local AttentionRecording* current = nullptr;

torch::Tensor AttentionTap(const torch::Tensor& x) {
  torch::Tensor y = x.clone();
  if (y.dim() >= 3 && y.size(-1) == y.size(-2)) RecordAttention(y);
  return y;
}

}  // namespace

void RecordAttention(const torch::Tensor& t) {
  if (current) current->tensors_.push_back(t);
}

AttentionRecording::AttentionRecording() : previous_(current) { current = this; }
AttentionRecording::~AttentionRecording() { current = previous_; }

TORCH_LIBRARY_FRAGMENT(netlens, m) { m.def("attention_tap(Tensor x) -> Tensor"); }

// Composite: clone's own autograd carries the gradient through.
TORCH_LIBRARY_IMPL(netlens, CompositeImplicitAutograd, m) { m.impl("attention_tap", &AttentionTap); }

void EnsureAttentionTapRegistered() {}

}  // namespace netlens
