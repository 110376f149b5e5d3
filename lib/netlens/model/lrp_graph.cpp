// The graph rewrite that puts LRP's rules into a forward graph (see lrp.h).
#include <torch/csrc/jit/ir/ir.h>
#include "netlens/model/libtorch.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/model/attention_tap.h"
#include "netlens/model/graph.h"
#include "netlens/model/lrp.h"

namespace netlens {
namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

bool IsNone(const Value* v) { return v->type()->kind() == c10::TypeKind::NoneType; }

std::string OpName(const Node* n) {
  std::string name = n->kind().toUnqualString();
  if (name.size() > 1 && name.back() == '_' && name[name.size() - 2] != '_') name.pop_back();  // add_ -> add
  return name;
}

c10::optional<bool> ConstantBool(Value* v) {
  const auto iv = torch::jit::toIValue(v);
  if (iv && iv->isBool()) return iv->toBool();
  return c10::nullopt;
}

// A convolution or linear layer and where its arguments are.
struct AffineNode {
  Node* node = nullptr;
  Value *x = nullptr, *w = nullptr, *b = nullptr;
  Value *stride = nullptr, *padding = nullptr, *dilation = nullptr, *groups = nullptr;
  bool conv = true;
};

c10::optional<AffineNode> AsAffine(Node* n) {
  const std::string kind = n->kind().toQualString();
  if (kind == "aten::_convolution" && n->inputs().size() >= 9) {
    if (ConstantBool(n->input(6)) != c10::optional<bool>(false)) return c10::nullopt;  // transposed
    return AffineNode{n, n->input(0), n->input(1), n->input(2), n->input(3), n->input(4), n->input(5), n->input(8), true};
  }
  if ((kind == "aten::conv1d" || kind == "aten::conv2d" || kind == "aten::conv3d") && n->inputs().size() == 7 &&
      n->input(4)->type()->kind() == c10::TypeKind::ListType)  // not the padding="same" overload
    return AffineNode{n, n->input(0), n->input(1), n->input(2), n->input(3), n->input(4), n->input(5), n->input(6), true};
  if (kind == "aten::linear" && n->inputs().size() == 3) {
    AffineNode a{n, n->input(0), n->input(1), n->input(2)};
    a.conv = false;
    return a;
  }
  return c10::nullopt;
}

// batch_norm in eval mode with running statistics.
bool IsEvalBatchNorm(Node* n) {
  return n->kind() == c10::aten::batch_norm && n->inputs().size() == 9 &&
         ConstantBool(n->input(5)) == c10::optional<bool>(false) && !IsNone(n->input(3)) && !IsNone(n->input(4));
}

// Ops that read a tensor's shape, type or device, not its values (a scripted BatchNorm's
// _check_input_dim).
bool ReadsMetadataOnly(const Node* n) {
  static const std::set<std::string> names = {"aten::dim", "aten::size", "aten::numel", "aten::len", "prim::device",
                                              "prim::dtype", "prim::layout", "aten::is_floating_point"};
  return names.count(n->kind().toQualString()) > 0;
}

// The batch norm that is the only reader of an affine layer's output values, to fold into it.
Node* FoldableBatchNorm(Value* y) {
  Node* bn = nullptr;
  for (const auto& use : y->uses()) {
    if (ReadsMetadataOnly(use.user)) continue;
    if (bn || use.offset != 0 || !IsEvalBatchNorm(use.user)) return nullptr;
    bn = use.user;
  }
  return bn;
}

// The inputs of a sum or pooling that the norm rule multiplies by (none: not such an op).
std::vector<size_t> NormInputs(Node* n, const std::set<const Value*>& dep) {
  static const std::set<std::string> pools = {
      "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
      "adaptive_avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d", "mean",
      // Interpolating upsampling: a linear map with fixed weights, so the z-rule of a layer
      // without parameters; nearest upsampling only copies (MovesOnly).
      "upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d", "upsample_bicubic2d",
      "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa"};
  if (n->kind().ns() != c10::namespaces::aten || n->outputs().size() != 1 || !IsTensor(n->output())) return {};
  const std::string name = OpName(n);
  if (!dep.count(n->input(0))) return {};
  if (name == "add" && n->inputs().size() == 3 && IsTensor(n->input(1)) && dep.count(n->input(1))) return {0, 1};
  if (pools.count(name) && n->kind().toUnqualString() == name) return {0};
  if (IsEvalBatchNorm(n)) return {0};
  return {};
}

// Ops whose ordinary gradient moves relevance exactly: they only copy, select or rearrange.
bool MovesOnly(const std::string& name) {
  static const std::set<std::string> names = {
      "cat", "stack", "flatten", "view", "reshape", "_unsafe_view", "dropout", "feature_dropout", "alpha_dropout",
      "clone", "contiguous", "permute", "transpose", "t", "squeeze", "unsqueeze", "slice", "select", "chunk",
      "split", "split_with_sizes", "unbind", "narrow", "detach", "to", "type_as", "expand", "expand_as", "flip",
      "constant_pad_nd", "pad", "channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "__getitem__", "copy",
      "identity", "numpy_T", "movedim", "unflatten", "repeat", "roll", "upsample_nearest1d", "upsample_nearest2d",
      "upsample_nearest3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d"};
  return names.count(name) > 0;
}

bool ReadsAndMakesTensors(Node* n) {
  bool in = false, out = false;
  for (Value* v : n->inputs()) in = in || IsTensor(v);
  for (Value* v : n->outputs()) out = out || IsTensor(v);
  return in && out;
}

std::string InnermostPath(const Node* n) {
  const auto paths = NodePaths(n);
  return paths.empty() ? "" : paths.back();
}

void RewriteAffine(Graph& graph, const AffineNode& a, Node* bn, LrpRule rule, const std::vector<double>& params,
                   std::pair<Value*, Value*> bounds) {
  Node* last = bn ? bn : a.node;
  torch::jit::WithInsertPoint guard(last->next());
  Value* none = graph.insertConstant(c10::IValue());
  if (!bounds.first) bounds = {none, none};
  Value* empty = graph.insertConstant(std::vector<int64_t>{});
  // The layer's input as it is now: an earlier rewrite may have put a rule's op in front of it.
  std::vector<torch::jit::NamedValue> args{a.node->input(0), last->output(), a.w, a.b};
  if (a.conv) {
    args.insert(args.end(), {a.stride, a.padding, a.dilation, a.groups});
  } else {
    args.insert(args.end(), {empty, empty, empty, graph.insertConstant(static_cast<int64_t>(1))});
  }
  if (bn) {
    args.insert(args.end(), {bn->input(1), bn->input(2), bn->input(3), bn->input(4), bn->input(7)});
  } else {
    args.insert(args.end(), {none, none, none, none, graph.insertConstant(0.0)});
  }
  args.insert(args.end(), {bounds.first, bounds.second});
  args.emplace_back(graph.insertConstant(static_cast<int64_t>(rule)));
  args.emplace_back(graph.insertConstant(params));
  Value* out = graph.insert(c10::Symbol::fromQualString(kLrpAffineOp), args);
  out->node()->copyMetadata(last);
  last->output()->replaceAllUsesAfterNodeWith(out->node(), out);
}

void RewriteNorm(Graph& graph, Node* n, const std::vector<size_t>& inputs, double eps) {
  const bool inplace = n->kind() == c10::aten::add_;
  // Out of place, so that each input keeps its value for the rule.
  Node* op = inplace ? OutOfPlaceCopy(graph, n, c10::aten::add) : n;
  for (size_t i : inputs) {
    torch::jit::WithInsertPoint guard(op);
    Value* in = graph.insert(c10::Symbol::fromQualString(kLrpNormInOp), {op->input(i)});
    in->node()->copyMetadata(n);
    op->replaceInput(i, in);
  }
  torch::jit::WithInsertPoint guard(op->next());
  Value* out = graph.insert(c10::Symbol::fromQualString(kLrpNormOutOp), {op->output(), graph.insertConstant(eps)});
  out->node()->copyMetadata(n);
  if (inplace) {
    RetireInPlace(n, out);
  } else {
    op->output()->replaceAllUsesAfterNodeWith(out->node(), out);
  }
}

// The values computed from the model input (the rules apply to those; a parameter or a constant
// is not relevance).
// A node's outputs depend on the input where one of its inputs does, or, for control flow (a
// scripted nn.MultiheadAttention's fast-path test), where a value one of its blocks returns does.
void MarkDependent(torch::jit::Block* block, std::set<const Value*>& dep) {
  for (Node* n : block->nodes()) {
    for (torch::jit::Block* b : n->blocks()) {
      // A loop's carried values: block input i (after the iteration count) is node input i + 1.
      for (size_t i = 1; n->kind() == c10::prim::Loop && i < b->inputs().size() && i + 1 < n->inputs().size(); ++i)
        if (dep.count(n->input(i + 1))) dep.insert(b->inputs()[i]);
      MarkDependent(b, dep);
    }
    if (ReadsOnlyMetadata(n)) continue;  // a shape carries no relevance
    bool depends = std::any_of(n->inputs().begin(), n->inputs().end(), [&](const Value* v) { return dep.count(v); });
    for (torch::jit::Block* b : n->blocks())
      depends = depends || std::any_of(b->outputs().begin(), b->outputs().end(), [&](const Value* v) { return dep.count(v); });
    if (depends)
      for (Value* o : n->outputs()) dep.insert(o);
  }
}

std::set<const Value*> DependentValues(Graph& graph, Value* image) {
  std::set<const Value*> dep;
  if (!image) return dep;
  dep.insert(image);
  MarkDependent(graph.block(), dep);
  return dep;
}

// The node that makes `v`, looking through ops that only move values and through dropout and
// attention taps (identities in eval mode).
Node* Source(Value* v) {
  Node* p = v->node();
  while (!p->inputs().empty() && p->kind().ns() == c10::namespaces::aten && MovesOnly(OpName(p))) p = p->input(0)->node();
  while (p->kind() == c10::Symbol::fromQualString(kAttentionTapOp)) p = p->input(0)->node();
  return p;
}

bool IsSoftmax(const Node* n) {
  return n->kind() == c10::Symbol::fromQualString("aten::softmax") || n->kind() == c10::Symbol::fromQualString("aten::_softmax");
}

bool IsProduct(const Node* n) {
  const std::string name = n->kind().ns() == c10::namespaces::aten ? OpName(n) : "";
  return name == "bmm" || name == "matmul" || name == "baddbmm";
}

// Attention products softmax(...) @ V (bmm or matmul, V depending on the input), with the softmax.
std::vector<std::pair<Node*, Node*>> AttentionProducts(const std::vector<Node*>& nodes,
                                                       const std::set<const Value*>& dep) {
  std::vector<std::pair<Node*, Node*>> out;
  for (Node* n : nodes) {
    const std::string name = n->kind().ns() == c10::namespaces::aten ? OpName(n) : "";
    if ((name != "bmm" && name != "matmul") || n->inputs().size() != 2 || !dep.count(n->input(1))) continue;
    Node* source = Source(n->input(0));
    if (IsSoftmax(source)) out.emplace_back(n, source);
  }
  return out;
}

// add, sub, mul or div of one descendant of the model input by constants (a model's own
// preprocessing): the index of that input, else -1.
int ScaledInput(Node* n, const std::set<const Value*>& dep) {
  static const std::set<std::string> ops = {"add", "sub", "mul", "div"};
  if (n->kind().ns() != c10::namespaces::aten || !ops.count(OpName(n)) || n->outputs().size() != 1 ||
      !IsTensor(n->output()))
    return -1;
  int d = -1;
  for (size_t i = 0; i < n->inputs().size(); ++i) {
    if (!dep.count(n->input(i))) continue;
    if (d >= 0) return -1;
    d = static_cast<int>(i);
  }
  return d >= 0 && IsTensor(n->input(d)) ? d : -1;
}

// The product of a signal and a gate (squeeze-and-excitation: x * sigmoid(...) or hardsigmoid,
// the gate perhaps viewed or expanded to the signal's shape), both descendants of the model input:
// the index of the signal and the gate's sigmoid node, else {-1, nullptr}.
std::pair<int, Node*> GateProduct(Node* n, const std::set<const Value*>& dep) {
  if (n->kind().ns() != c10::namespaces::aten || OpName(n) != "mul" || n->inputs().size() != 2 ||
      n->outputs().size() != 1 || !IsTensor(n->output()) || !IsTensor(n->input(0)) || !IsTensor(n->input(1)) ||
      !dep.count(n->input(0)) || !dep.count(n->input(1)))
    return {-1, nullptr};
  auto gate_of = [](Value* v) -> Node* {
    Node* p = v->node();
    while (MovesOnly(OpName(p)) && p->kind().ns() == c10::namespaces::aten && !p->inputs().empty()) p = p->input(0)->node();
    const std::string op = p->kind().ns() == c10::namespaces::aten ? OpName(p) : "";
    return op == "sigmoid" || op == "hardsigmoid" ? p : nullptr;
  };
  Node* g0 = gate_of(n->input(0));
  Node* g1 = gate_of(n->input(1));
  if ((g0 != nullptr) == (g1 != nullptr)) return {-1, nullptr};
  return g0 ? std::make_pair(1, g0) : std::make_pair(0, g1);
}

bool IsInplace(const Node* n) { return std::string(n->kind().toUnqualString()) != OpName(n); }

// The zbox bounds at an affine layer's input x: the model input's bounds (per channel, pixels in
// [0, 1] normalized) sent through the ops between the model input and x, which must be elementwise
// or moves (a model's own preprocessing); elementwise min and max of the two, as a negative scale
// swaps them.
std::pair<Value*, Value*> BoundsAt(Graph& graph, const std::vector<Node*>& nodes, Node* layer, Value* x, Value* image,
                                   const std::set<const Value*>& dep, const LrpRules& rules) {
  const std::string where = Quote(InnermostPath(layer));
  if (!image || !dep.count(x) || rules.low.empty())
    throw UsageError("lrp: the zbox rule of layer " + where + " needs the bounds of its input, which is not the model input");
  static const std::set<std::string> elementwise = {
      "add", "sub", "mul", "div", "flip", "pad", "constant_pad_nd", "to", "contiguous", "clone", "slice", "select",
      "index_select", "permute", "view", "reshape", "flatten", "detach", "type_as", "unsqueeze", "squeeze", "cat",
      "stack"};
  std::set<const Value*> needed{x};
  std::vector<Node*> prefix;
  for (auto it = std::find(nodes.rbegin(), nodes.rend(), layer); it != nodes.rend(); ++it) {
    Node* n = *it;
    bool feeds = false;
    for (Value* o : n->outputs()) feeds = feeds || needed.count(o);
    if (!feeds) continue;
    bool reads_input = false;
    for (Value* v : n->inputs()) reads_input = reads_input || dep.count(v);
    if (!reads_input) continue;
    if (!elementwise.count(OpName(n)) || IsInplace(n))
      throw UsageError("lrp: the zbox rule of layer " + where + " needs the bounds of its input, which the model computes " +
                       "from its input by " + OpName(n) + "; give zbox to the first layer only (or flat, wsquare)");
    prefix.insert(prefix.begin(), n);
    for (Value* v : n->inputs())
      if (dep.count(v)) needed.insert(v);
  }
  torch::jit::WithInsertPoint guard(layer);
  auto bound = [&](const std::vector<double>& values) {
    Value* constant = graph.insertConstant(
        torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64)).view({1, -1, 1, 1}));
    Value* typed = graph.insert(c10::aten::type_as, {constant, image});
    Value* zero = graph.insert(c10::aten::mul, {image, graph.insertConstant(0.0)});
    std::unordered_map<Value*, Value*> map{{image, graph.insert(c10::aten::add, {zero, typed})}};
    for (Node* n : prefix) {
      Node* copy = graph.insertNode(graph.createClone(n, [&](Value* v) {
        auto found = map.find(v);
        return found == map.end() ? v : found->second;
      }));
      for (size_t i = 0; i < n->outputs().size(); ++i) map[n->output(i)] = copy->output(i);
    }
    return map.at(x);
  };
  Value* a = bound(rules.low);
  Value* b = bound(rules.high);
  return {graph.insert(c10::aten::minimum, {a, b}), graph.insert(c10::aten::maximum, {a, b})};
}

}  // namespace

LrpCensus RewriteForLrp(Graph& graph, const LrpRules& rules) {
  EnsureLrpOpRegistered();
  LrpCensus census;
  // A fused attention is written out, its attention held constant (netlens::attention_sdpa).
  const int64_t fused = DecomposeFusedAttention(graph, rules.epsilon);
  if (fused > 0) census.normalized["attention (softmax held constant)"] += fused;
  Value* image = graph.inputs().size() > 1 ? graph.inputs()[1] : nullptr;
  std::vector<Node*> nodes;
  ForEachNode(graph.block(), [&](Node* n) { nodes.push_back(n); });

  const std::set<const Value*> dep = DependentValues(graph, image);
  // CP-LRP's parts (lrp.h): attention products with their softmaxes, and the scores' products
  // before the softmaxes (they get no relevance once the attention is held constant).
  const std::vector<std::pair<Node*, Node*>> attention = AttentionProducts(nodes, dep);
  std::set<Node*> held;
  for (const auto& [product, softmax] : attention) {
    held.insert(product);
    held.insert(softmax);
    Node* scores = softmax->input(0)->node();
    while (scores->kind().ns() == c10::namespaces::aten && !IsProduct(scores) && !scores->inputs().empty() &&
           (MovesOnly(OpName(scores)) || ScaledInput(scores, dep) >= 0 || OpName(scores) == "masked_fill"))
      scores = scores->input(ScaledInput(scores, dep) >= 0 ? ScaledInput(scores, dep) : 0)->node();
    if (IsProduct(scores)) held.insert(scores);
  }
  std::vector<Node*> layer_norms;
  std::vector<std::pair<AffineNode, Node*>> affines;  // with the batch norm folded into each
  std::vector<std::pair<Node*, std::vector<size_t>>> norms;
  std::vector<std::pair<Node*, int>> scalings;
  std::map<Node*, int> gate_products;  // with the signal's index
  std::set<Node*> folded, gates;
  for (Node* n : nodes) {
    const auto [signal, gate] = GateProduct(n, dep);
    if (signal < 0) continue;
    gate_products.emplace(n, signal);
    gates.insert(gate);
  }
  for (Node* n : nodes) {
    if (folded.count(n) || held.count(n)) continue;
    if (n->kind() == c10::Symbol::fromQualString("aten::layer_norm") && n->inputs().size() == 6 && dep.count(n->input(0))) {
      layer_norms.push_back(n);
      continue;
    }
    std::vector<size_t> norm_inputs;
    int scaled = -1;
    if (auto a = AsAffine(n)) {
      Node* bn = rules.fold_batch_norm ? FoldableBatchNorm(n->output()) : nullptr;
      if (!bn && n->output()->uses().size() > 1) {
        std::string users;
        for (const auto& use : n->output()->uses()) users += std::string(" ") + use.user->kind().toQualString();
        Log().debug("lrp: {} has {} readers ({}), so no batch norm is folded into it", InnermostPath(n),
                    n->output()->uses().size(), Trim(users));
      }
      if (bn) folded.insert(bn);
      affines.emplace_back(*a, bn);
    } else if (!(norm_inputs = NormInputs(n, dep)).empty()) {
      norms.emplace_back(n, norm_inputs);
    } else if ((scaled = ScaledInput(n, dep)) >= 0) {
      scalings.emplace_back(n, scaled);
      ++census.passed[OpName(n)];
    } else if (auto product = gate_products.find(n); product != gate_products.end()) {
      // All relevance to the signal, none to the gate: the gate acts as a constant weight, as in
      // the LRP literature's treatment of gating.
      scalings.emplace_back(n, product->second);
      ++census.passed["mul (gate)"];
    } else if (gates.count(n)) {
      // A gate's sigmoid: no relevance reaches it.
    } else if (OpName(n) == "_native_multi_head_attention") {
      // A scripted nn.MultiheadAttention's fused no-grad fast path: the branch beside it, which
      // the attention rule above rewrites, is the one taken, since the LRP pass's input requires
      // grad.
    } else if (!AsRectifier(n) && !AsSmoothActivation(n) && n->kind().ns() == c10::namespaces::aten &&
               ReadsAndMakesTensors(n) && !MovesOnly(OpName(n)) &&
               std::any_of(n->inputs().begin(), n->inputs().end(), [&](const Value* v) { return dep.count(v); })) {
      ++census.ordinary[OpName(n)];
    }
  }
  const ActivationCensus activations = CountActivations(graph);
  for (const auto& [op, count] : activations.rectifiers) census.passed[op] += count;
  for (const auto& [op, count] : activations.others) census.passed[op] += count;

  // The first layer: the one(s) reading the model input, else the first in forward order.
  std::set<Node*> first;
  for (const auto& [a, bn] : affines)
    if (a.x == image) first.insert(a.node);
  if (first.empty() && !affines.empty()) first.insert(affines.front().first.node);

  const std::vector<double> params = LrpParams(rules);
  std::vector<std::string> paths;
  for (const auto& [a, bn] : affines) {
    const std::string path = InnermostPath(a.node);
    LrpRule rule = a.conv ? rules.conv : rules.dense;
    if (rules.has_first && first.count(a.node)) rule = rules.first;
    auto named = rules.layers.find(path);
    if (named != rules.layers.end()) rule = named->second;
    paths.push_back(path);
    census.affine.push_back({path, a.conv ? "conv" : "linear", rule, bn ? InnermostPath(bn) : ""});
    std::pair<Value*, Value*> bounds{nullptr, nullptr};
    if (rule == LrpRule::kZBox) bounds = BoundsAt(graph, nodes, a.node, a.x, image, dep, rules);
    RewriteAffine(graph, a, bn, rule, params, bounds);
  }
  for (const auto& [path, rule] : rules.layers) {
    if (std::find(paths.begin(), paths.end(), path) != paths.end()) continue;
    std::string msg = "--layer-rules: " + Quote(path) + " is not a convolution or linear layer of the model";
    const std::string hint = DidYouMean(path, paths);
    if (!hint.empty()) msg += "; " + hint;
    throw UsageError(msg + " (LRP rules go to the " + std::to_string(paths.size()) +
                     " convolution and linear layers; netlens inspect lists them)");
  }
  for (const auto& [n, inputs] : norms) {
    ++census.normalized[OpName(n)];
    RewriteNorm(graph, n, inputs, rules.epsilon);
  }
  for (Node* product : [&] {
         std::vector<Node*> p;
         for (const auto& a : attention) p.push_back(a.first);
         return p;
       }()) {
    ++census.normalized["attention (softmax held constant)"];
    torch::jit::WithInsertPoint guard(product);
    Value* constant = graph.insert(c10::aten::detach, {product->input(0)});
    product->replaceInput(0, constant);
    RewriteNorm(graph, product, {1}, rules.epsilon);
  }
  for (Node* n : layer_norms) {
    ++census.normalized["layer_norm (std held constant)"];
    torch::jit::WithInsertPoint guard(n);
    Value* out = graph.insert(c10::Symbol::fromQualString(kLrpLayerNormOp),
                              {n->input(0), n->input(1), n->input(2), n->input(3), n->input(4),
                               graph.insertConstant(rules.epsilon), graph.insertConstant(rules.zero_bias)});
    out->node()->copyMetadata(n);
    n->output()->replaceAllUsesWith(out);
    n->destroy();
  }
  // Relevance passes op(x, constants) and a gate product unchanged to x; x as it is now, after the
  // rewrites above.
  for (const auto& [n, index] : scalings)
    FollowWithActivationRule(graph, n, index, BackwardRule::kLrp,
                             IsInplace(n) ? c10::make_optional(c10::Symbol::fromQualString("aten::" + OpName(n)))
                                          : c10::nullopt);
  ReplaceRectifiers(graph, BackwardRule::kLrp, /*dry_run=*/false);
  ReplaceSmoothActivations(graph, BackwardRule::kLrp);
  return census;
}

}  // namespace netlens
