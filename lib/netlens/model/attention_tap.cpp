#include "netlens/model/attention_tap.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/library.h>

#include <cmath>
#include <limits>

#include "netlens/model/graph.h"
#include "netlens/model/lrp.h"

namespace netlens {
namespace {

thread_local AttentionRecording* current = nullptr;

torch::Tensor AttentionTap(const torch::Tensor& x) {
  torch::Tensor y = x.clone();
  if (y.dim() >= 3 && y.size(-1) == y.size(-2)) RecordAttention(y);
  return y;
}

std::tuple<torch::Tensor, torch::Tensor> AttentionSdpa(const torch::Tensor& q, const torch::Tensor& k_in,
                                                      const torch::Tensor& v_in,
                                                      const c10::optional<torch::Tensor>& mask, bool is_causal,
                                                      c10::optional<double> scale, double lrp_eps) {
  torch::Tensor k = k_in, v = v_in;
  if (q.dim() >= 3 && k.dim() == q.dim() && k.size(-3) != q.size(-3) && k.size(-3) > 0 &&
      q.size(-3) % k.size(-3) == 0) {  // grouped-query attention: each key/value head serves a group
    k = k.repeat_interleave(q.size(-3) / k.size(-3), -3);
    v = v.repeat_interleave(q.size(-3) / v.size(-3), -3);
  }
  const double s = scale.has_value() ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * s;
  const double lowest = -std::numeric_limits<double>::infinity();
  if (is_causal) {
    const torch::Tensor keep = torch::ones({q.size(-2), k.size(-2)}, q.options().dtype(torch::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), lowest);
  }
  if (mask.has_value() && mask->defined())
    scores = mask->scalar_type() == torch::kBool ? scores.masked_fill(mask->logical_not(), lowest) : scores + *mask;
  const torch::Tensor attention = AttentionTap(torch::softmax(scores, -1));
  if (lrp_eps >= 0) return {LrpNormOut(torch::matmul(attention.detach(), LrpNormIn(v)), lrp_eps), attention};
  return {torch::matmul(attention, v), attention};
}

}  // namespace

int64_t DecomposeFusedAttention(torch::jit::Graph& graph, double lrp_eps) {
  const c10::Symbol fused = c10::Symbol::fromQualString("aten::scaled_dot_product_attention");
  const c10::Symbol fused_113 = c10::Symbol::fromQualString("aten::_scaled_dot_product_attention");
  std::vector<torch::jit::Node*> nodes;
  ForEachNode(graph.block(), [&](torch::jit::Node* n) {
    if ((n->kind() == fused || n->kind() == fused_113) && n->maybeSchema()) nodes.push_back(n);
  });
  const c10::Symbol op = c10::Symbol::fromQualString(kAttentionSdpaOp);
  for (torch::jit::Node* n : nodes) {
    const c10::FunctionSchema& schema = n->schema();
    torch::jit::WithInsertPoint guard(n);
    const auto input = [&](const char* name) -> torch::jit::Value* {
      const auto index = schema.argumentIndexWithName(name);
      return index ? n->input(static_cast<size_t>(*index)) : graph.insertConstant(c10::IValue());
    };
    torch::jit::Node* m = graph.create(op, {input("query"), input("key"), input("value"), input("attn_mask"),
                                            schema.argumentIndexWithName("is_causal") ? input("is_causal")
                                                                                      : graph.insertConstant(false),
                                            input("scale"), graph.insertConstant(lrp_eps)},
                                       2);
    m->insertBefore(n);
    m->copyMetadata(n);
    m->output(0)->setType(n->output(0)->type());
    m->output(1)->setType(c10::TensorType::get());
    n->output(0)->replaceAllUsesWith(m->output(0));
    if (n->outputs().size() > 1) n->output(1)->replaceAllUsesWith(m->output(1));
    n->destroy();
  }
  return static_cast<int64_t>(nodes.size());
}

void RecordAttention(const torch::Tensor& t) {
  if (current) current->tensors_.push_back(t);
}

AttentionRecording::AttentionRecording() : previous_(current) { current = this; }
AttentionRecording::~AttentionRecording() { current = previous_; }

TORCH_LIBRARY_FRAGMENT(netlens, m) {
  m.def("attention_tap(Tensor x) -> Tensor");
  m.def("attention_sdpa(Tensor query, Tensor key, Tensor value, Tensor? attn_mask, bool is_causal, float? scale, "
        "float lrp_eps) -> "
        "(Tensor, Tensor)");
}

// Composite: the ATen ops' own autograd carries the gradient through.
TORCH_LIBRARY_IMPL(netlens, CompositeImplicitAutograd, m) {
  m.impl("attention_tap", &AttentionTap);
  m.impl("attention_sdpa", &AttentionSdpa);
}

void EnsureAttentionTapRegistered() {}

}  // namespace netlens
