#include "netlens/model/graph.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <set>
#include <vector>

namespace netlens {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
namespace prim = c10::prim;

void ForEachNode(Block* block, const std::function<void(Node*)>& fn) {
  for (Node* node : block->nodes()) {
    fn(node);
    for (Block* sub : node->blocks()) ForEachNode(sub, fn);
  }
}

namespace {

bool HasCalls(Graph& graph) {
  bool found = false;
  ForEachNode(graph.block(), [&](Node* n) {
    found = found || n->kind() == prim::CallMethod || n->kind() == prim::CallFunction;
  });
  return found;
}

// Follows a chain of prim::GetAttr back to the graph's `self` and reads the attribute's value.
c10::optional<c10::IValue> ReadAttribute(Value* value, Graph& graph,
                                         const torch::jit::Module& module) {
  std::vector<std::string> names;
  while (value->node()->kind() == prim::GetAttr) {
    names.push_back(value->node()->s(c10::attr::name));
    value = value->node()->input(0);
  }
  if (value != graph.inputs().at(0)) return c10::nullopt;
  c10::IValue current = module._ivalue();
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    if (!current.isObject()) return c10::nullopt;
    auto object = current.toObject();
    if (!object->type()->hasAttribute(*it)) return c10::nullopt;
    current = object->getAttr(*it);
  }
  return current;
}

// Replaces boolean, integer and float attributes read from `self` by constants, then lets
// constant propagation remove the branches they decide (training, memory_efficient, ...).
void FoldAttributes(std::shared_ptr<Graph>& graph, const torch::jit::Module& module) {
  std::vector<Node*> getattrs;
  ForEachNode(graph->block(), [&](Node* n) {
    if (n->kind() == prim::GetAttr) getattrs.push_back(n);
  });
  for (Node* n : getattrs) {
    const auto kind = n->output()->type()->kind();
    if (kind != c10::TypeKind::BoolType && kind != c10::TypeKind::IntType &&
        kind != c10::TypeKind::FloatType)
      continue;
    auto value = ReadAttribute(n->output(), *graph, module);
    if (!value) continue;
    torch::jit::WithInsertPoint guard(n);
    n->output()->replaceAllUsesWith(graph->insertConstant(*value));
  }
  torch::jit::ConstantPropagation(graph);
  torch::jit::EliminateDeadCode(graph);
}

}  // namespace

std::shared_ptr<Graph> InlinedForward(const torch::jit::Module& module) {
  std::shared_ptr<Graph> graph = module.get_method("forward").graph()->copy();
  {
    // Inlining takes each callee's "optimized" graph, which is itself inlined (with call stacks
    // that name the nested module instances) only while the executor's optimization is on.
    torch::jit::GraphOptimizerEnabledGuard optimize(true);
    for (int i = 0; i < 16 && HasCalls(*graph); ++i) torch::jit::Inline(*graph);
  }
  FoldAttributes(graph, module);
  return graph;
}

c10::optional<RectifierForm> AsRectifier(Node* n) {
  const std::string kind = n->kind().toQualString();
  RectifierForm form;
  if (kind == "aten::relu" || kind == "aten::relu_") {
    form.inplace = kind == "aten::relu_";
    return form;
  }
  if (kind == "aten::relu6" || kind == "aten::relu6_") {
    form.hi = 6;
    form.inplace = kind == "aten::relu6_";
    return form;
  }
  if ((kind == "aten::hardtanh" || kind == "aten::hardtanh_") && n->inputs().size() == 3) {
    auto lo = torch::jit::toIValue(n->input(1));
    auto hi = torch::jit::toIValue(n->input(2));
    if (!lo || !hi || !lo->isScalar() || !hi->isScalar()) return c10::nullopt;
    if (lo->toScalar().toDouble() != 0.0) return c10::nullopt;
    form.hi = hi->toScalar().toDouble();
    form.inplace = kind == "aten::hardtanh_";
    return form;
  }
  return c10::nullopt;
}

// Activations the rectifier rules leave as they are (their backward is the ordinary gradient)
// unless --smooth-activations applies netlens::activation_rule to them.
constexpr const char* kOtherActivations[] = {"silu", "gelu", "hardswish", "elu", "selu", "celu", "leaky_relu",
                                             "rrelu", "prelu", "mish", "softplus", "hardshrink", "softshrink"};

c10::optional<SmoothActivation> AsSmoothActivation(Node* n) {
  const std::string qualified = n->kind().toQualString();
  if (qualified.rfind("aten::", 0) != 0 || n->outputs().size() != 1 || n->inputs().empty()) return c10::nullopt;
  SmoothActivation a;
  a.op = qualified.substr(6);
  if (a.op.size() > 1 && a.op.back() == '_') {
    a.op.pop_back();
    a.inplace = true;
  }
  for (const char* other : kOtherActivations)
    if (a.op == other) return a;
  return c10::nullopt;
}

int64_t ActivationCensus::Rectifiers() const {
  int64_t n = 0;
  for (const auto& [op, count] : rectifiers) n += count;
  return n;
}

int64_t ActivationCensus::Others() const {
  int64_t n = 0;
  for (const auto& [op, count] : others) n += count;
  return n;
}

ActivationCensus CountActivations(Graph& graph) {
  ActivationCensus census;
  ForEachNode(graph.block(), [&](Node* n) {
    const std::string qualified = n->kind().toQualString();
    if (qualified.rfind("aten::", 0) != 0) return;
    std::string op = qualified.substr(6);
    if (op.size() > 1 && op.back() == '_') op.pop_back();  // relu_ counts as relu
    if (AsRectifier(n)) {
      ++census.rectifiers[op];
      return;
    }
    if (const auto smooth = AsSmoothActivation(n)) ++census.others[smooth->op];
  });
  return census;
}

// Module paths of the instances a node was inlined from, outermost first:
// {"features", "features.3"} for an op of features.3.
std::vector<std::string> NodePaths(const Node* node) {
  std::vector<std::string> paths;
  auto stack = node->callstack();
  if (!stack) return paths;
  std::string prefix;
  for (const auto& entry : (*stack)->vec()) {
    const auto& info = std::get<2>(entry);
    // Calls of a module's own methods (self._forward_impl) carry the instance name "SELF".
    if (!info || info->instance_name() == "SELF") continue;
    prefix = prefix.empty() ? info->instance_name() : prefix + "." + info->instance_name();
    paths.push_back(prefix);
  }
  return paths;
}

int64_t ReplaceRectifiers(Graph& graph, BackwardRule rule, bool dry_run) {
  std::vector<Node*> nodes;
  ForEachNode(graph.block(), [&](Node* n) {
    if (AsRectifier(n)) nodes.push_back(n);
  });
  if (dry_run) return static_cast<int64_t>(nodes.size());
  const auto op = c10::Symbol::fromQualString(kRectifierOp);
  for (Node* n : nodes) {
    const RectifierForm form = *AsRectifier(n);
    torch::jit::WithInsertPoint guard(n);
    Value* x = n->input(0);
    Value* out = graph.insert(op, {x, graph.insertConstant(form.lo), graph.insertConstant(form.hi),
                                   graph.insertConstant(static_cast<int64_t>(rule))});
    out->node()->copyMetadata(n);  // keep the call stack: the op still belongs to its module
    n->output()->replaceAllUsesWith(out);
    // An in-place relu_ also changed its input; later readers of the input see the result.
    if (form.inplace) x->replaceAllUsesAfterNodeWith(n, out);
    n->destroy();
  }
  return static_cast<int64_t>(nodes.size());
}

// Under --smooth-activations, the guided and deconvnet rules also reach every smooth or leaky
// activation: y = f(x) is followed by netlens::activation_rule(x, y, rule). An in-place form
// becomes out-of-place first, so that x keeps the activation's input.
namespace {

// Whether a value of this type can carry a gradient: a tensor, or a list, tuple or optional of them
// (an int, a bool or a device, what a shape check reads, cannot).
bool CarriesTensors(const c10::TypePtr& type) {
  if (type->isSubtypeOf(*c10::TensorType::get())) return true;
  for (const auto& contained : type->containedTypes())
    if (CarriesTensors(contained)) return true;
  return false;
}

}  // namespace

bool DeepLiftOneBackwardIsExact(Graph& graph) {
  const auto max_pool = c10::Symbol::fromQualString("aten::max_pool2d");
  std::vector<Node*> pools;
  ForEachNode(graph.block(), [&](Node* n) {
    if (n->kind() == max_pool && n->inputs().size() == 6) pools.push_back(n);
  });
  if (pools.empty()) return true;
  if (pools.size() > 1 || pools[0]->owningBlock() != graph.block()) return false;
  // Ops whose backward does not read the values they are given: any number of the pool's
  // descendants among their inputs (sums, concatenations, reshapes, poolings by averages) ...
  static const std::set<std::string> passing{
      "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::cat", "aten::stack", "aten::flatten",
      "aten::view", "aten::reshape", "aten::contiguous", "aten::clone", "aten::dropout", "aten::dropout_",
      "aten::feature_dropout", "aten::feature_dropout_", "aten::avg_pool1d", "aten::avg_pool2d", "aten::avg_pool3d",
      "aten::adaptive_avg_pool1d", "aten::adaptive_avg_pool2d", "aten::adaptive_avg_pool3d", "aten::mean",
      "aten::sum", "aten::permute", "aten::transpose", "aten::t", "aten::squeeze", "aten::unsqueeze",
      "aten::expand", "aten::expand_as", "aten::slice", "aten::select", "aten::chunk", "aten::split",
      "aten::Int", "aten::append", "aten::constant_pad_nd", "aten::pad", "aten::upsample_nearest2d",
      "aten::upsample_bilinear2d", "prim::NumToTensor", "prim::ListConstruct", "prim::ListUnpack",
      "prim::TupleConstruct", "prim::TupleUnpack", "prim::ConstantChunk"};
  // ... and linear maps, linear in one of their inputs only: the others must not depend on the
  // model's input.
  static const std::set<std::string> linear{
      "aten::_convolution", "aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::convolution",
      "aten::linear", "aten::addmm", "aten::matmul", "aten::mm", "aten::mul", "aten::mul_", "aten::div",
      "aten::div_", "aten::batch_norm"};
  // Values that depend on the model's input (the other operand of a product may differ between
  // the halves: a gate computed from the input), conservatively through loops and branches.
  std::set<const Value*> tainted(graph.inputs().begin() + 1, graph.inputs().end());
  ForEachNode(graph.block(), [&](Node* n) {
    bool depends = !n->blocks().empty();
    for (const Value* in : n->inputs()) depends = depends || tainted.count(in);
    if (depends) tainted.insert(n->outputs().begin(), n->outputs().end());
  });
  std::set<const Value*> reached{pools[0]->output()};
  // The pool's descendants that can carry a gradient back to it (a shape check's int cannot).
  std::vector<const Value*> queue{pools[0]->output()};
  while (!queue.empty()) {
    const Value* v = queue.back();
    queue.pop_back();
    for (const auto& use : v->uses()) {
      Node* n = use.user;
      const std::string kind = n->kind().toQualString();
      if (n->kind() == c10::prim::Return || ReadsOnlyMetadata(n)) continue;
      if (n->owningBlock() != graph.block()) return false;
      if (!AsRectifier(n) && !passing.count(kind)) {
        if (!linear.count(kind)) return false;
        int64_t varying = 0;
        for (const Value* in : n->inputs()) varying += tainted.count(in) ? 1 : 0;
        // x / y reads y's value; a product of two of the input's descendants reads both.
        const bool divides = kind == "aten::div" || kind == "aten::div_";
        if (varying > 1 || (divides && !reached.count(n->input(0)))) return false;
      }
      for (const Value* out : n->outputs())
        if (CarriesTensors(out->type()) && reached.insert(out).second) queue.push_back(out);
    }
  }
  return true;
}

bool IsTensor(const Value* v) { return v->type()->isSubtypeOf(*c10::TensorType::get()); }

bool ReadsOnlyMetadata(const Node* n) {
  static const std::set<std::string> kinds{"aten::dim",   "aten::size",  "aten::sym_size", "aten::numel",
                                           "aten::sym_numel", "aten::len", "prim::shape",  "prim::device",
                                           "prim::dtype", "prim::layout", "aten::is_floating_point"};
  return kinds.count(n->kind().toQualString()) > 0;
}

Node* OutOfPlaceCopy(Graph& graph, Node* n, c10::Symbol kind) {
  Node* f = graph.create(kind, n->inputs(), 1);
  f->insertBefore(n);
  f->output()->setType(n->output()->type());
  f->copyMetadata(n);
  return f;
}

void RetireInPlace(Node* n, Value* out) {
  Value* overwritten = n->input(0);
  n->output()->replaceAllUsesWith(out);
  overwritten->replaceAllUsesAfterNodeWith(n, out);  // later readers of the overwritten input
  n->destroy();
}

void FollowWithActivationRule(Graph& graph, Node* n, size_t input, BackwardRule rule,
                              c10::optional<c10::Symbol> out_of_place) {
  Value* x = n->input(input);
  Node* f = out_of_place ? OutOfPlaceCopy(graph, n, *out_of_place) : n;
  torch::jit::WithInsertPoint guard(f->next());
  Value* out = graph.insert(c10::Symbol::fromQualString(kActivationRuleOp),
                            {x, f->output(), graph.insertConstant(static_cast<int64_t>(rule))});
  out->node()->copyMetadata(n);
  if (out_of_place) {
    RetireInPlace(n, out);
  } else {
    f->output()->replaceAllUsesAfterNodeWith(out->node(), out);
  }
}

int64_t ReplaceSmoothActivations(Graph& graph, BackwardRule rule) {
  std::vector<Node*> nodes;
  ForEachNode(graph.block(), [&](Node* n) {
    if (AsSmoothActivation(n)) nodes.push_back(n);
  });
  for (Node* n : nodes) {
    const SmoothActivation a = *AsSmoothActivation(n);
    FollowWithActivationRule(graph, n, 0, rule,
                             a.inplace ? c10::make_optional(c10::Symbol::fromQualString("aten::" + a.op))
                                       : c10::nullopt);
  }
  return static_cast<int64_t>(nodes.size());
}

}  // namespace netlens
