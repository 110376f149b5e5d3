#include "netlens/techniques/rectifier_report.h"

#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <vector>

#include "netlens/core/log.h"
#include "netlens/model/graph.h"

namespace netlens {
namespace {

std::string Kinds(const std::map<std::string, int64_t>& counts) {
  std::string out;
  for (const auto& [op, n] : counts) out += (out.empty() ? "" : ", ") + op + " " + std::to_string(n);
  return out;
}

// Nonlinear ops that no rule of netlens rewrites, so their backward stays the ordinary gradient:
// normalizations, softmax, products of two activations (attention's q k^T and A v: a matmul or bmm
// whose operands are neither parameters nor their transposes) and fused attention. Counted over
// the whole graph, both branches of a scripted nn.MultiheadAttention's fast-path test included.
bool FromParameter(const torch::jit::Value* v) {
  const torch::jit::Node* n = v->node();
  while (n->kind() == c10::aten::t || n->kind() == c10::aten::transpose || n->kind() == c10::aten::permute ||
         n->kind() == c10::aten::contiguous)
    n = n->input(0)->node();
  return n->kind() == c10::prim::GetAttr || n->kind() == c10::prim::Constant;
}

void CountOrdinary(torch::jit::Block* block, std::map<std::string, int64_t>& out) {
  static const std::set<std::string> kOps{"aten::layer_norm", "aten::group_norm", "aten::softmax",
                                          "aten::log_softmax", "aten::_native_multi_head_attention",
                                          "aten::scaled_dot_product_attention"};
  for (torch::jit::Node* n : block->nodes()) {
    const std::string kind = n->kind().toQualString();
    if (kOps.count(kind)) {
      ++out[kind.substr(6)];
    } else if ((n->kind() == c10::aten::bmm || n->kind() == c10::aten::matmul) && !FromParameter(n->input(0)) &&
               !FromParameter(n->input(1))) {
      ++out["products of activations"];
    }
    for (torch::jit::Block* b : n->blocks()) CountOrdinary(b, out);
  }
}

struct Known {
  c10::weak_intrusive_ptr<c10::ivalue::Object> module;  // expired: another model at this address
  ActivationCensus census;
  std::map<std::string, int64_t> ordinary;  // CountOrdinary
  bool deeplift_one_backward = false;  // DeepLiftOneBackwardIsExact
  std::vector<BackwardRule> said;  // rules already described in the log
};

std::mutex known_mutex;
std::vector<Known> known;

// The model's entry, analysed on first sight; the caller holds known_mutex.
Known& EntryOf(Model& model) {
  const c10::intrusive_ptr<c10::ivalue::Object> object = model.module()._ivalue();
  for (auto& k : known)
    if (!k.module.expired() && k.module.lock().get() == object.get()) return k;
  known.erase(std::remove_if(known.begin(), known.end(), [](const Known& k) { return k.module.expired(); }),
              known.end());
  const auto graph = InlinedForward(model.module());
  std::map<std::string, int64_t> ordinary;
  CountOrdinary(graph->block(), ordinary);
  known.push_back({c10::weak_intrusive_ptr<c10::ivalue::Object>(object), CountActivations(*graph), ordinary,
                   DeepLiftOneBackwardIsExact(*graph), {}});
  return known.back();
}

}  // namespace

bool DeepLiftOneBackward(Model& model) {
  std::lock_guard<std::mutex> lock(known_mutex);
  return EntryOf(model).deeplift_one_backward;
}

ActivationCensus ActivationsOf(Model& model) {
  std::lock_guard<std::mutex> lock(known_mutex);
  return EntryOf(model).census;
}

nlohmann::json RectifierReport(Model& model, BackwardRule rule) {
  std::lock_guard<std::mutex> lock(known_mutex);
  Known* entry = &EntryOf(model);
  const ActivationCensus& census = entry->census;
  const std::string name = rule == BackwardRule::kDeconvnet ? "deconvnet" : IsDeepLift(rule) ? "deeplift" : "guided";
  const std::string plain = IsDeepLift(rule) ? "the gradient times (input - baseline), max-pooling aside"
                                                            : "the vanilla gradient (saliency)";
  const bool smooth = model.lens().ReachesSmoothActivations(rule);
  if (std::find(entry->said.begin(), entry->said.end(), rule) == entry->said.end()) {
    entry->said.push_back(rule);
    const std::string hint = IsDeepLift(rule) ? "" : "; --smooth-activations applies netlens' generalization of the rule to them";
    if (smooth && census.Others() > 0) {
      Log().info("{}: the rule replaces {} rectifier(s){} and reaches {} smooth or leaky activation(s) ({}) by {}",
                 name, census.Rectifiers(), census.Rectifiers() ? " (" + Kinds(census.rectifiers) + ")" : "",
                 census.Others(), Kinds(census.others),
                 IsDeepLift(rule) ? "the rescale rule (Captum applies it to ELU, LeakyReLU and Softplus modules only)"
                                  : "netlens' generalization (--smooth-activations)");
    } else if (census.Rectifiers() == 0) {
      Log().warn("{}: the model has no ReLU-like activation to rewrite{}, so the {} rule changes nothing and "
                 "the map equals {}{}",
                 name, census.Others() ? " (it has " + Kinds(census.others) + ")" : "", name, plain,
                 census.Others() ? hint : "");
    } else if (census.Others() > 0) {
      Log().warn("{}: the rule replaces {} rectifier(s) ({}) and leaves {} other activation(s) with their "
                 "ordinary gradient ({}): the map is partly {}{}",
                 name, census.Rectifiers(), Kinds(census.rectifiers), census.Others(), Kinds(census.others), plain,
                 hint);
    } else {
      Log().info("{}: the rule replaces {} rectifier(s) ({}); the model has no other activation", name,
                 census.Rectifiers(), Kinds(census.rectifiers));
    }
    if (!entry->ordinary.empty()) {
      // A transformer's normalizations and attention: no rule of netlens reaches them.
      if (IsDeepLift(rule))
        Log().warn("deeplift: {} in the graph keep their ordinary gradient (DeepLIFT's rescale rule is for "
                   "elementwise activations; normalizations and attention have no rule here, as in Captum), so "
                   "summation-to-delta holds only approximately (metrics.summation_to_delta says how well)",
                   Kinds(entry->ordinary));
      else
        Log().info("{}: {} in the graph keep their ordinary gradient (the rule is about activations)", name,
                   Kinds(entry->ordinary));
    }
  }
  // Rectifiers under `rewritten`; the other activations under `generalized` when the rule
  // reached them, else under `left`.
  nlohmann::json report{{"rule", name},
                        {"rewritten", census.Rectifiers()},
                        {"rewritten_kinds", census.rectifiers},
                        {"left", smooth ? 0 : census.Others()},
                        {"left_kinds", smooth ? std::map<std::string, int64_t>{} : census.others}};
  if (IsDeepLift(rule)) report["backward"] = entry->deeplift_one_backward ? "inputs" : "pairs";
  if (!entry->ordinary.empty()) report["ordinary_gradient_kinds"] = entry->ordinary;
  if (smooth) {
    report["generalized"] = census.Others();
    report["generalized_kinds"] = census.others;
  }
  return report;
}

}  // namespace netlens
