// The lens on any TorchScript model (see docs/architecture.md).
//
// At construction the model's forward graph is copied and fully inlined; after inlining, each
// node's call stack names the module instances it came from ("layer4.1.conv2"), for traced and
// scripted models alike. Boolean and integer attributes (training, memory_efficient) are folded
// to constants so that control flow they guard disappears. For a request (a set of layers and a
// backward rule) the lens then builds, once, and caches a rewritten graph that
//   * returns the output of every requested layer next to the model output (downstream ops get a
//     copy, so in-place ops after the layer cannot change what the lens returns), and
//   * with the guided or deconvnet rule, has every relu, relu_, relu6 and hardtanh(0, max)
//     replaced by netlens::rectifier with that backward rule;
//   * with the LRP rule, carries the relevance rules of model/lrp.h.
// One forward pass then yields all requested activations; one torch::autograd::grad call
// yields the gradients at all of them and at the input.
#pragma once

#include "netlens/model/libtorch.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "netlens/model/lrp.h"
#include "netlens/model/rectifier_op.h"

namespace torch::jit {
struct Graph;
struct GraphFunction;
struct Value;
}  // namespace torch::jit

namespace netlens {

// One line for a LibTorch failure (core/strings.h: TorchMessageSummary of c10::Error's message
// without its C++ backtrace, or of any other exception's what()).
std::string TorchErrorSummary(const std::exception& e);

struct LayerInfo {
  std::string path;            // module path as in print(model): "features.3", "layer4.1.conv2"
  std::string type;            // last component of the module's class name: "Conv2d"
  int64_t order = -1;          // forward order of the layer's first op; -1: no op in the graph
  bool capturable = false;     // has one tensor output reachable at the graph's top level
  std::string why_not;         // reason when not capturable
  std::vector<int64_t> shape;  // output shape for the probe input (empty until measured)
};

// The logits in a model's output: the output itself, or the first element of a tuple.
torch::Tensor LogitsOf(const c10::IValue& output);

class Lens {
 public:
  explicit Lens(torch::jit::Module module);
  ~Lens();

  // All modules of the model, capturable ones first in forward order, then the rest.
  const std::vector<LayerInfo>& layers() const { return layers_; }
  const LayerInfo& Info(const std::string& path) const;

  // A layer name as a user writes it -> module path. Accepts module paths, "conv-N" (the N-th
  // convolution in forward order, from 0), "last-conv" and "conv-last". Throws UsageError naming
  // the closest valid names.
  std::string Resolve(const std::string& name) const;

  // Number of rectifiers (relu, relu_, relu6, hardtanh(0, x)) the guided rule replaces.
  int64_t RectifierCount() const { return rectifier_count_; }

  // Whether the guided and deconvnet rules also reach smooth and leaky activations (SiLU, GELU,
  // ...: netlens::activation_rule, opt-in with --smooth-activations). Off: they keep their
  // ordinary gradient, as in Captum.
  void SetSmoothActivationRules(bool on) { smooth_activation_rules_ = on; }
  bool SmoothActivationRules() const { return smooth_activation_rules_; }
  // Whether passes under `rule` take netlens::activation_rule at smooth and leaky activations: the
  // guided and deconvnet rules with the flag above, the deeplift rules always (DeepLIFT's rescale
  // rule is defined for every elementwise nonlinearity).
  bool ReachesSmoothActivations(BackwardRule rule) const;

  // The LRP rules that BackwardRule::kLrp passes use (model/lrp.h), and what they do to this
  // model's graph (throws UsageError for a rule given to a path that is no layer of it).
  void SetLrpRules(const LrpRules& rules) { lrp_rules_ = rules; }
  LrpCensus LrpPlan(const LrpRules& rules) const;

  struct Capture {
    torch::Tensor output;                     // the model's output (undefined: not asked for)
    std::vector<torch::Tensor> activations;   // one per requested layer, in request order
  };

  // One forward pass capturing `layer_paths` (already resolved) under `rule`. Without
  // `with_output` the graph stops at the last requested layer: what only feeds the model's
  // output is removed (image optimization on an early layer runs a fraction of the model).
  Capture Forward(const torch::Tensor& input, const std::vector<std::string>& layer_paths,
                  BackwardRule rule = BackwardRule::kVanilla, bool with_output = true);

  // The forward pass of a request for gradients at `layer_paths` only (vanilla rule, no input
  // gradient): the returned activations and output are on the autograd graph, the input is not.
  // With frozen prefixes on (Model::SetManyPasses), the part of a float32 model that does not
  // depend on the layers runs as a frozen, inference-optimized function without autograd and the
  // rest from the layer outputs as leaves (model/split.h); results agree with the plain pass to
  // float32 rounding. Off, float64, and graphs that cannot be split safely run the plain pass. At
  // most kMaxSplits layer sets keep a frozen copy of the weights.
  Capture ForwardForLayerGradients(const torch::Tensor& input, const std::vector<std::string>& layer_paths);
  void SetFreezePrefixes(bool on) { freeze_prefixes_ = on; }
  // Forgets the frozen prefixes (they hold the parameters as constants).
  void DropFrozen();
  static constexpr size_t kMaxSplits = 3;

  // One forward pass in which ops after `layer` read `layer_output * scale` instead of the layer
  // output (`scale` broadcasts against it: N x K x 1 x 1 zeros one channel per sample). For
  // ablation studies; returns the model output.
  torch::Tensor ForwardScaled(const torch::Tensor& input, const std::string& layer,
                              const torch::Tensor& scale);

  // One forward pass with every softmax tapped (model/attention_tap.h; a fused
  // scaled_dot_product_attention is written out first): the model's output and the
  // self-attention probabilities (... x T x T) in execution order, on the autograd graph when
  // grad mode is on. A scripted nn.MultiheadAttention takes its fused fast path (no softmax to
  // read) under no-grad: give an input that requires grad.
  struct Attention {
    torch::Tensor output;
    std::vector<torch::Tensor> maps;
  };
  Attention ForwardAttention(const torch::Tensor& input);

  // Runs one no-grad forward on `probe` and records every capturable layer's output shape;
  // returns the model's output for the probe.
  torch::Tensor MeasureShapes(const torch::Tensor& probe);

 private:
  std::shared_ptr<torch::jit::GraphFunction> Build(const std::vector<std::string>& paths,
                                                   BackwardRule rule, bool with_output);
  std::shared_ptr<torch::jit::GraphFunction> BuildScaled(const std::string& path);
  // A fresh copy of the base graph and, in it, the output value of each of `paths`.
  std::pair<std::shared_ptr<torch::jit::Graph>, std::vector<torch::jit::Value*>> CopyWithLayers(
      const std::vector<std::string>& paths) const;
  // The function cached under `key`, built from the graph `build` returns on first use.
  std::shared_ptr<torch::jit::GraphFunction> Cached(
      const std::string& key, const std::function<std::shared_ptr<torch::jit::Graph>()>& build);

  struct Split;
  // The split of the request `paths` (built on first use; nullptr: it cannot be split).
  std::shared_ptr<Split> SplitFor(const std::vector<std::string>& paths, const torch::Device& device);
  // Runs `paths` through the plain pass from now on.
  void ForgetSplit(const std::vector<std::string>& paths);

  torch::jit::Module module_;
  std::shared_ptr<torch::jit::Graph> base_graph_;
  std::vector<LayerInfo> layers_;
  std::map<std::string, size_t> index_;
  int64_t rectifier_count_ = 0;
  bool smooth_activation_rules_ = false;
  LrpRules lrp_rules_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<torch::jit::GraphFunction>> cache_;
  bool freeze_prefixes_ = false;
  std::mutex split_mutex_;  // guards splits_
  std::map<std::string, std::shared_ptr<Split>> splits_;
};

}  // namespace netlens
