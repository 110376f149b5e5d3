#include "netlens/model/lens.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <unordered_map>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/model/attention_tap.h"
#include "netlens/model/graph.h"
#include "netlens/model/split.h"

namespace netlens {

std::string TorchErrorSummary(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  return TorchMessageSummary(c10_error ? c10_error->what_without_backtrace() : e.what());
}

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
namespace prim = c10::prim;
namespace aten = c10::aten;

bool NodeInPath(const Node* node, const std::string& path) {
  const auto paths = NodePaths(node);
  return std::find(paths.begin(), paths.end(), path) != paths.end();
}

// Under the deeplift rules: every max_pool2d becomes netlens::deeplift_max_pool2d (same inputs,
// and whether it un-pools as Captum does).
int64_t ReplaceMaxPools(Graph& graph, bool overwrite) {
  std::vector<Node*> nodes;
  ForEachNode(graph.block(), [&](Node* n) {
    if (n->kind() == c10::Symbol::fromQualString("aten::max_pool2d") && n->inputs().size() == 6) nodes.push_back(n);
  });
  const auto op = c10::Symbol::fromQualString(kDeepLiftMaxPoolOp);
  for (Node* n : nodes) {
    torch::jit::WithInsertPoint guard(n);
    std::vector<torch::jit::NamedValue> args;
    for (Value* v : n->inputs()) args.emplace_back(v);
    args.emplace_back(graph.insertConstant(overwrite));
    Value* out = graph.insert(op, args);
    out->node()->copyMetadata(n);
    n->output()->replaceAllUsesWith(out);
    n->destroy();
  }
  return static_cast<int64_t>(nodes.size());
}

// For each module path: the last tensor value produced inside it that is used outside of it.
std::map<std::string, Value*> FindLayerOutputs(Graph& graph, std::map<std::string, int64_t>* order) {
  std::map<std::string, Value*> outputs;
  int64_t index = 0;
  ForEachNode(graph.block(), [&](Node* n) {
    if (n->kind() == prim::Constant) return;
    const auto paths = NodePaths(n);
    for (const auto& path : paths) {
      if (order && !order->count(path)) (*order)[path] = index;
      for (Value* v : n->outputs()) {
        if (!IsTensor(v)) continue;
        for (const auto& use : v->uses()) {
          if (!NodeInPath(use.user, path)) {
            outputs[path] = v;
            break;
          }
        }
      }
    }
    ++index;
  });
  return outputs;
}

// Inserts op(v, extra...) right after v's producer; every later reader of v reads its result.
void InsertAfter(Graph& graph, Value* v, c10::Symbol op, const std::vector<Value*>& extra) {
  torch::jit::WithInsertPoint guard(v->node()->next());
  std::vector<torch::jit::NamedValue> args{torch::jit::NamedValue(v)};
  for (Value* e : extra) args.emplace_back(e);
  Value* out = graph.insert(op, args);
  v->replaceAllUsesAfterNodeWith(out->node(), out);
}

std::string RequestKey(const std::vector<std::string>& paths, BackwardRule rule, bool smooth) {
  return std::to_string(static_cast<int>(rule)) + (smooth ? "s|" : "|") + Join(paths, "|");
}

bool RewritesRectifiers(BackwardRule rule) { return rule != BackwardRule::kVanilla && rule != BackwardRule::kLrp; }
bool RewritesSmooth(BackwardRule rule) { return rule == BackwardRule::kGuided || rule == BackwardRule::kDeconvnet; }

bool IsConvType(const std::string& type) {
  return StartsWith(type, "Conv") && type.find("Transpose") == std::string::npos;
}

}  // namespace

Lens::Lens(torch::jit::Module module) : module_(std::move(module)) {
  EnsureRectifierOpRegistered();
  EnsureLrpOpRegistered();
  EnsureAttentionTapRegistered();
  base_graph_ = InlinedForward(module_);
  // Run graphs as written: no fusion or autodiff subgraphs that would bypass the rectifier op or
  // change float64 summation order.
  torch::jit::setGraphExecutorOptimize(false);
  rectifier_count_ = ReplaceRectifiers(*base_graph_, BackwardRule::kGuided, /*dry_run=*/true);

  std::map<std::string, int64_t> order;
  const auto outputs = FindLayerOutputs(*base_graph_, &order);
  for (const auto& item : module_.named_modules()) {
    if (item.name.empty()) continue;
    LayerInfo info;
    info.path = item.name;
    const auto type_name = item.value.type()->name();
    info.type = type_name ? type_name->name() : "?";
    auto o = order.find(item.name);
    if (o != order.end()) info.order = o->second;
    auto out = outputs.find(item.name);
    if (info.order < 0) {
      info.why_not = "it runs no op in forward (e.g. nn.Identity or an unused module)";
    } else if (out == outputs.end()) {
      info.why_not = "it has no tensor output used outside it";
    } else if (out->second->node()->owningBlock() != base_graph_->block()) {
      info.why_not = "its output is computed inside control flow (prim::If/Loop)";
    } else {
      info.capturable = true;
    }
    layers_.push_back(std::move(info));
  }
  std::stable_sort(layers_.begin(), layers_.end(), [](const LayerInfo& a, const LayerInfo& b) {
    if ((a.order < 0) != (b.order < 0)) return a.order >= 0;
    return a.order < b.order;
  });
  for (size_t i = 0; i < layers_.size(); ++i) index_[layers_[i].path] = i;
  Log().debug("lens: {} modules, {} rectifiers in the forward graph", layers_.size(),
              rectifier_count_);
}

Lens::~Lens() = default;

const LayerInfo& Lens::Info(const std::string& path) const {
  auto it = index_.find(path);
  if (it == index_.end()) throw InternalError("Lens::Info: unresolved layer " + Quote(path));
  return layers_[it->second];
}

std::string Lens::Resolve(const std::string& name) const {
  std::vector<std::string> convs;
  for (const auto& l : layers_)
    if (l.capturable && IsConvType(l.type)) convs.push_back(l.path);
  std::string path = name;
  if (name == "last-conv" || name == "conv-last") {
    if (convs.empty()) throw UsageError("layer \"last-conv\": the model has no convolution");
    path = convs.back();
  } else if (StartsWith(name, "conv-")) {
    const std::string digits = name.substr(5);
    const bool numeric = !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
    if (!numeric)
      throw UsageError("layer " + Quote(name) + ": use conv-N with N a number from 0, or last-conv");
    const size_t n = std::stoul(digits);
    if (n >= convs.size())
      throw UsageError("layer " + Quote(name) + ": the model has " + std::to_string(convs.size()) +
                       " convolutions (conv-0 .. conv-" + std::to_string(convs.size() - 1) + ")");
    path = convs[n];
  }
  auto it = index_.find(path);
  if (it == index_.end()) {
    std::vector<std::string> names;
    for (const auto& l : layers_)
      if (l.capturable) names.push_back(l.path);
    std::string msg = "unknown layer " + Quote(name);
    const std::string hint = DidYouMean(name, names);
    if (!hint.empty()) msg += "; " + hint;
    throw UsageError(msg + " (netlens inspect --model M lists all " + std::to_string(names.size()) +
                     " layers; aliases: conv-N, last-conv)");
  }
  const LayerInfo& info = layers_[it->second];
  if (!info.capturable)
    throw UsageError("layer " + Quote(name) + " (" + info.type + ") cannot be captured: " +
                     info.why_not);
  if (path != name) Log().info("layer {} resolved to {} ({})", name, path, info.type);
  return path;
}

std::pair<std::shared_ptr<Graph>, std::vector<Value*>> Lens::CopyWithLayers(
    const std::vector<std::string>& paths) const {
  auto graph = base_graph_->copy();
  const auto outputs = FindLayerOutputs(*graph, nullptr);
  std::vector<Value*> values;
  for (const auto& path : paths) {
    auto it = outputs.find(path);
    if (it == outputs.end() || !Info(path).capturable)
      throw InternalError("Lens: layer " + Quote(path) + " is not capturable");
    values.push_back(it->second);
  }
  return {graph, values};
}

std::shared_ptr<torch::jit::GraphFunction> Lens::Cached(
    const std::string& key, const std::function<std::shared_ptr<Graph>()>& build) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto cached = cache_.find(key);
  if (cached != cache_.end()) return cached->second;
  auto fn = std::make_shared<torch::jit::GraphFunction>("netlens_forward", build(), nullptr);
  cache_[key] = fn;
  return fn;
}

bool Lens::ReachesSmoothActivations(BackwardRule rule) const {
  return (smooth_activation_rules_ && RewritesSmooth(rule)) || IsDeepLift(rule);
}

std::shared_ptr<torch::jit::GraphFunction> Lens::Build(const std::vector<std::string>& paths,
                                                       BackwardRule rule, bool with_output) {
  const bool smooth = ReachesSmoothActivations(rule);
  const std::string lrp_key = rule == BackwardRule::kLrp ? "|" + lrp_rules_.Key() : "";
  return Cached(RequestKey(paths, rule, smooth) + lrp_key + (with_output ? "" : "|layers-only"), [&] {
    auto [graph, values] = CopyWithLayers(paths);
    std::set<Value*> tapped;
    for (Value* v : values) {
      // Later ops read a copy, so nothing downstream (an in-place add, relu_) changes `v`.
      if (tapped.insert(v).second) InsertAfter(*graph, v, aten::clone, {});
    }
    // The returned tuple first: the rewrites below replace (and an in-place relu_ destroys) the
    // nodes whose outputs may be captured, and they redirect every use, the tuple's included.
    std::vector<Value*> returned;
    if (with_output) returned.push_back(graph->outputs().at(0));
    returned.insert(returned.end(), values.begin(), values.end());
    {
      torch::jit::WithInsertPoint guard(graph->return_node());
      Node* tuple = graph->insertNode(graph->createTuple(returned));
      graph->return_node()->replaceInput(0, tuple->output());
    }
    if (RewritesRectifiers(rule)) ReplaceRectifiers(*graph, rule, /*dry_run=*/false);
    if (smooth) ReplaceSmoothActivations(*graph, rule);
    if (IsDeepLift(rule)) ReplaceMaxPools(*graph, rule == BackwardRule::kDeepLiftCaptum);
    if (rule == BackwardRule::kLrp) RewriteForLrp(*graph, lrp_rules_);
    if (!with_output) torch::jit::EliminateDeadCode(graph);
    Log().debug("lens: built graph for {} layer(s), rule {}", paths.size(), static_cast<int>(rule));
    return graph;
  });
}

LrpCensus Lens::LrpPlan(const LrpRules& rules) const {
  auto graph = base_graph_->copy();
  return RewriteForLrp(*graph, rules);
}

std::shared_ptr<torch::jit::GraphFunction> Lens::BuildScaled(const std::string& path) {
  return Cached("scaled|" + path, [&] {
    auto [graph, values] = CopyWithLayers({path});
    Value* scale = graph->addInput("netlens_scale");
    scale->setType(c10::TensorType::get());
    InsertAfter(*graph, values[0], aten::mul, {scale});
    return graph;
  });
}

torch::Tensor Lens::ForwardScaled(const torch::Tensor& input, const std::string& layer,
                                  const torch::Tensor& scale) {
  auto fn = BuildScaled(layer);
  torch::jit::Stack stack{module_._ivalue(), input, scale};
  fn->run(stack);
  return LogitsOf(stack.back());
}

torch::Tensor LogitsOf(const c10::IValue& output) {
  if (output.isTensor()) return output.toTensor();
  // GoogLeNet and Inception return a named tuple (logits, aux...): the logits come first.
  if (output.isTuple()) {
    const auto& elements = output.toTupleRef().elements();
    if (!elements.empty() && elements[0].isTensor()) {
      static std::once_flag logged;
      std::call_once(logged, [] {
        Log().info("the model returns a tuple; using its first element as the logits");
      });
      return elements[0].toTensor();
    }
  }
  throw UsageError("the model's forward returns " + output.tagKind() +
                   ", not a tensor of logits (or a tuple starting with one)");
}

namespace {

void CollectSoftmaxes(torch::jit::Block* block, std::vector<Node*>& out) {
  for (Node* n : block->nodes()) {
    if (n->kind() == aten::softmax) out.push_back(n);
    for (torch::jit::Block* b : n->blocks()) CollectSoftmaxes(b, out);
  }
}

}  // namespace

Lens::Attention Lens::ForwardAttention(const torch::Tensor& input) {
  auto fn = Cached("attention", [&] {
    auto graph = base_graph_->copy();
    const int64_t fused = DecomposeFusedAttention(*graph);  // before the taps: it records its own
    if (fused > 0) Log().debug("lens: {} fused scaled-dot-product attention(s) written out to tap them", fused);
    std::vector<Node*> softmaxes;
    CollectSoftmaxes(graph->block(), softmaxes);
    for (Node* n : softmaxes) {
      Node* tap = graph->create(c10::Symbol::fromQualString(kAttentionTapOp), {n->output()});
      tap->insertAfter(n);
      tap->output()->setType(n->output()->type());
      n->output()->replaceAllUsesAfterNodeWith(tap, tap->output());
    }
    Log().debug("lens: built graph with {} softmax(es) tapped", softmaxes.size());
    return graph;
  });
  AttentionRecording recording;
  torch::jit::Stack stack{module_._ivalue(), input};
  fn->run(stack);
  return {LogitsOf(stack.back()), recording.tensors()};
}

Lens::Capture Lens::Forward(const torch::Tensor& input, const std::vector<std::string>& layer_paths,
                            BackwardRule rule, bool with_output) {
  auto fn = Build(layer_paths, rule, with_output);
  torch::jit::Stack stack{module_._ivalue(), input};
  fn->run(stack);
  const auto elements = stack.back().toTupleRef().elements();
  Capture capture;
  if (with_output) capture.output = LogitsOf(elements[0]);
  for (size_t i = with_output ? 1 : 0; i < elements.size(); ++i)
    capture.activations.push_back(elements[i].toTensor());
  return capture;
}

struct Lens::Split {
  torch::jit::Module frozen;  // a clone of module_, frozen with `method` preserved
  std::string method;         // the prefix
  std::shared_ptr<torch::jit::GraphFunction> tail;
  size_t cuts = 0;
};

std::shared_ptr<Lens::Split> Lens::SplitFor(const std::vector<std::string>& paths, const torch::Device& device) {
  const std::string key = Join(paths, "|");
  auto found = splits_.find(key);
  if (found != splits_.end()) return found->second;
  const auto frozen = std::count_if(splits_.begin(), splits_.end(), [](const auto& s) { return s.second != nullptr; });
  if (static_cast<size_t>(frozen) >= kMaxSplits) return nullptr;
  std::shared_ptr<Split> split;
  StageTimer timer;
  try {
    auto [graph, values] = CopyWithLayers(paths);
    std::string why;
    GraphSplit parts = SplitAtLayers(graph, values, &why);
    if (!parts.prefix) {
      Log().info("lens: gradients at {} run the whole model with autograd ({})", Join(paths, ", "), why);
    } else {
      // The prefix becomes a method of a private copy of the model (freezing rewrites the types
      // of the module it is given, so never the model's own), so that freezing inlines its
      // weights and folds its batch norms; `forward` is frozen alongside (freezing keeps it).
      split = std::make_shared<Split>();
      torch::jit::Module copy = module_.clone();
      std::unordered_map<c10::TypePtr, c10::TypePtr> types;
      const auto originals = module_.named_modules(), copies = copy.named_modules();
      for (auto a = originals.begin(), b = copies.begin(); a != originals.end() && b != copies.end(); ++a, ++b)
        types.emplace((*a).value.type(), (*b).value.type());
      parts.prefix->remapTypes([&](c10::TypePtr t) {
        auto it = types.find(t);
        return it == types.end() ? t : it->second;
      });
      auto* fn = copy._ivalue()->compilation_unit()->create_function(
          c10::QualifiedName(*copy.type()->name(), "netlens_prefix"), parts.prefix, /*shouldMangle=*/true);
      split->method = fn->name();
      copy.type()->addMethod(fn);
      torch::jit::GraphOptimizerEnabledGuard optimize(true);  // see Model::Logits
      split->frozen = torch::jit::freeze(copy, std::vector<std::string>{split->method});
      if (device.is_cpu()) split->frozen = torch::jit::optimize_for_inference(split->frozen, {split->method});
      split->tail = std::make_shared<torch::jit::GraphFunction>("netlens_tail", parts.tail, nullptr);
      split->cuts = parts.cuts;
      timer.Stage("freeze and optimize the model up to " + Join(paths, ", "));
      Log().info("lens: gradients at {} run the model up to the layers frozen, without autograd "
                 "({} layer output(s) as leaves, {} further value(s) into the rest)",
                 Join(paths, ", "), parts.cuts, parts.boundary);
    }
  } catch (const std::exception& e) {
    Log().info("lens: gradients at {} run the whole model with autograd (freezing failed: {})", Join(paths, ", "),
               TorchErrorSummary(e));
    split = nullptr;
  }
  splits_[key] = split;
  return split;
}

void Lens::DropFrozen() {
  std::lock_guard<std::mutex> lock(split_mutex_);
  splits_.clear();
}

void Lens::ForgetSplit(const std::vector<std::string>& paths) {
  std::lock_guard<std::mutex> lock(split_mutex_);
  splits_[Join(paths, "|")] = nullptr;
}

Lens::Capture Lens::ForwardForLayerGradients(const torch::Tensor& input, const std::vector<std::string>& layer_paths) {
  std::shared_ptr<Split> split;
  if (freeze_prefixes_ && input.scalar_type() == torch::kFloat32 && !layer_paths.empty()) {
    std::lock_guard<std::mutex> lock(split_mutex_);
    split = SplitFor(layer_paths, input.device());
  }
  if (split) {
    try {
      c10::IValue prefix_out;
      {
        torch::NoGradGuard no_grad;
        prefix_out = split->frozen.get_method(split->method)({input.detach()});
      }
      const auto& parts = prefix_out.toTupleRef().elements();
      torch::jit::Stack stack{module_._ivalue()};
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i < split->cuts) stack.emplace_back(parts[i].toTensor().detach().requires_grad_(true));
        else stack.push_back(parts[i]);
      }
      split->tail->run(stack);
      const auto elements = stack.back().toTupleRef().elements();
      Capture capture;
      capture.output = LogitsOf(elements[0]);
      for (size_t i = 1; i < elements.size(); ++i) capture.activations.push_back(elements[i].toTensor());
      if (capture.output.requires_grad()) return capture;
      // The logits do not depend on the layers (a model returning them beside another output that
      // does): the plain pass says so the usual way.
      ForgetSplit(layer_paths);
    } catch (const c10::Error& e) {
      // A shape the frozen function was specialised against: the plain pass from now on.
      Log().info("lens: frozen prefix failed ({}); gradients at {} run the whole model with autograd",
                 TorchErrorSummary(e), Join(layer_paths, ", "));
      ForgetSplit(layer_paths);
    }
  }
  torch::Tensor x = input.detach().requires_grad_(true);
  return Forward(x, layer_paths, BackwardRule::kVanilla);
}

torch::Tensor Lens::MeasureShapes(const torch::Tensor& probe) {
  std::vector<std::string> paths;
  for (const auto& l : layers_)
    if (l.capturable) paths.push_back(l.path);
  torch::NoGradGuard no_grad;
  const Capture capture = Forward(probe, paths);
  for (size_t i = 0; i < paths.size(); ++i)
    layers_[index_[paths[i]]].shape = capture.activations[i].sizes().vec();
  return capture.output;
}

}  // namespace netlens
