// TorchScript graph helpers shared by the lens and the activation census: walking nodes,
// inlining a module's forward, folding attributes, recognizing rectifiers and other activations.
#pragma once

#include "netlens/model/libtorch.h"

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "netlens/model/rectifier_op.h"

namespace torch::jit {
struct Block;
struct Graph;
struct Node;
}  // namespace torch::jit

namespace netlens {

// Calls `fn` on every node of `block` and its nested blocks, in program order.
void ForEachNode(torch::jit::Block* block, const std::function<void(torch::jit::Node*)>& fn);

// A copy of the module's forward graph with every call inlined (each node's call stack then
// names the module instances it came from) and the boolean, integer and float attributes read
// from `self` folded to constants, with the branches they decide removed.
std::shared_ptr<torch::jit::Graph> InlinedForward(const torch::jit::Module& module);

// The clamp range of a ReLU-like node (relu, relu6, hardtanh(0, max), in place or not).
struct RectifierForm {
  double lo = 0;
  double hi = std::numeric_limits<double>::infinity();
  bool inplace = false;
};
c10::optional<RectifierForm> AsRectifier(torch::jit::Node* n);

// A smooth or leaky activation (silu, gelu, hardswish, elu, selu, celu, leaky_relu, rrelu, prelu,
// mish, softplus, hardshrink, softshrink), by its out-of-place op name.
struct SmoothActivation {
  std::string op;
  bool inplace = false;
};
c10::optional<SmoothActivation> AsSmoothActivation(torch::jit::Node* n);

// The activation functions of a graph as the guided and deconvnet rules see them: rectifiers
// (which the rules replace) and the smooth or leaky activations of post-2019 CNNs (SiLU, GELU,
// Hardswish, ELU, LeakyReLU, Mish, ...), whose backward stays the ordinary gradient. Counted by
// op, in-place forms with the plain one ("relu" for relu_).
struct ActivationCensus {
  std::map<std::string, int64_t> rectifiers;
  std::map<std::string, int64_t> others;
  int64_t Rectifiers() const;
  int64_t Others() const;
};
ActivationCensus CountActivations(torch::jit::Graph& graph);

// Whether DeepLIFT may run its backward pass over the inputs alone, with the references'
// activations recorded by a forward pass of their own (model/rectifier_op.h, DeepLiftTape),
// and get the same multipliers as the backward pass over input/reference pairs. The input's
// multipliers read the reference half's gradient only in the max-pooling rule, and the two halves'
// gradients are the same wherever no max-pool or op whose backward reads its operands' values
// (a product of two activations, softmax, a smooth activation) lies between the op and the output:
// true for a graph without max_pool2d, or with one whose output reaches only linear ops,
// reshapes, sums, poolings by averages and rectifiers (ResNet's stem); false for SqueezeNet, VGG
// and AlexNet (several max-pools) and for a max-pool inside a loop or branch.
bool DeepLiftOneBackwardIsExact(torch::jit::Graph& graph);

// Module paths of the instances a node was inlined from, outermost first:
// {"features", "features.3"} for an op of features.3.
std::vector<std::string> NodePaths(const torch::jit::Node* node);

// Every rectifier (relu, relu_, relu6, hardtanh(0, x)) becomes netlens::rectifier with `rule`;
// returns how many (with `dry_run`, only counts them).
int64_t ReplaceRectifiers(torch::jit::Graph& graph, BackwardRule rule, bool dry_run);

// Every smooth or leaky activation y = f(x) is followed by netlens::activation_rule(x, y, rule)
// (an in-place form becomes out-of-place first, so that x keeps the activation's input).
int64_t ReplaceSmoothActivations(torch::jit::Graph& graph, BackwardRule rule);

// Whether a graph value is a tensor.
bool IsTensor(const torch::jit::Value* v);

// Whether `n` reads only what a tensor's shape, type or device is (size, dim, numel, dtype, ...),
// not its values: no gradient and no relevance pass it (a scripted batch norm's input check, a
// traced model's padding arithmetic: size -> NumToTensor -> floor_divide -> Int).
bool ReadsOnlyMetadata(const torch::jit::Node* n);

// An in-place op `n` (add_, silu_) as its out-of-place form `kind`, inserted before it with the
// same inputs, so that its input keeps its value for a rule inserted after the copy. RetireInPlace
// then gives `out` to n's readers and to the later readers of the input n overwrote, and removes n.
torch::jit::Node* OutOfPlaceCopy(torch::jit::Graph& graph, torch::jit::Node* n, c10::Symbol kind);
void RetireInPlace(torch::jit::Node* n, torch::jit::Value* out);

// y = n(...) is followed by netlens::activation_rule(x, y, rule), x being n's input `input`;
// later readers of y read the rule's output. `out_of_place`: n is in place, and this op of the
// same inputs replaces it first.
void FollowWithActivationRule(torch::jit::Graph& graph, torch::jit::Node* n, size_t input, BackwardRule rule,
                              c10::optional<c10::Symbol> out_of_place = c10::nullopt);

}  // namespace netlens
