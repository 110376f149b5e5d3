// Layer-wise relevance propagation through the lens: the rules, how a composite assigns them to
// the layers of a graph, and the ops that carry them.
//
// LRP runs as one forward and one backward pass in which the "gradient" is the relevance itself
// (Zennit's and Captum's convention). The lens rewrites, under BackwardRule::kLrp:
//   * every convolution and linear layer (aten::_convolution, conv1d/2d/3d, linear), with the
//     batch norm that follows it folded in (Zennit's canonizer; --batch-norm layer keeps it a
//     layer of its own), into netlens::lrp_affine(x, y, weight, bias, ..., rule, params): forward
//     y as the model computed it, backward the layer's rule (below);
//   * every sum and pooling (add, avg/max pooling, adaptive average pooling, mean, interpolating
//     upsampling) and every batch norm left unfolded into netlens::lrp_norm_in(x) on each input
//     and netlens::lrp_norm_out(z) on the output: backward x * J^T (R / stab(z)), the epsilon
//     rule of a layer without parameters (Zennit's Norm, Captum's EpsilonRule on pooling and
//     batch norm);
//   * every activation (ReLU family, SiLU, GELU, ...), every elementwise add, sub, mul or div
//     of the model input's descendants by a constant (a model's own preprocessing), and the
//     signal of a gate product x * sigmoid(...), into a pass-through (Zennit's Pass, Captum's
//     ReLU handling; the gate gets no relevance).
//   * a transformer's parts by the conservative rules of Ali et al. 2022 ("XAI for Transformers:
//     Better Explanations through Conservative Propagation", CP-LRP): every layer_norm into
//     netlens::lrp_layer_norm (its standard deviation held constant: the epsilon rule of the
//     affine map that leaves, R_x = x * ((q - mean q) / s), q = R * w / stab(y)), and every
//     attention product softmax(...) @ V with the attention held constant (detached, so that the
//     queries and keys get no relevance) and the product wrapped as a sum is (lrp_norm_in on V,
//     lrp_norm_out on the product). A fused scaled_dot_product_attention is written out first.
// Anything else keeps its ordinary gradient (reshapes, concatenation, dropout and nearest
// upsampling are exact; a matmul by a weight or a product of two signals is no LRP rule and is
// reported).
//
// The rules of an affine layer z = W x + b, with R the relevance at z, stab(z) = z + eps * sign(z)
// (sign(0) = 1), W+ = max(W, 0), W- = min(W, 0), x+ and x- likewise:
//   epsilon     R_in = x * W^T (R / stab(z))                             (Bach et al. 2015)
//   gamma       the same with W + gamma W+ and b + gamma b+ in place of W and b (Montavon 2019)
//               for positive outputs, W + gamma W- and b + gamma b- for negative ones, the
//               negative inputs taking the other (Zennit's generalized gamma)
//   alpha-beta  alpha * positive part - beta * negative part, each with its own denominator
//               z_p = W+ x+ + W- x- + b+, z_n = W- x+ + W+ x- + b-       (Bach et al. 2015)
//   zplus       alpha-beta with alpha 1, beta 0                          (Montavon et al. 2017)
//   flat        R_in = 1^T (R / stab(1 1)): spread evenly over the receptive field (Lapuschkin 2019)
//   wsquare     R_in = (W^2)^T (R / stab(W^2 1 + b^2))                   (Montavon et al. 2017)
//   zbox        z = W x + b - (W+ l + b+) - (W- h + b-), R_in = x W^T s - l W+^T s - h W-^T s,
//               s = R / stab(z), for inputs bounded by [l, h]            (Montavon et al. 2017)
// These are Zennit's definitions (rules.py); with --bias zero the bias leaves every denominator
// (Zennit's zero_params=['bias']), which conserves relevance exactly.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

namespace torch::jit {
struct Graph;
}  // namespace torch::jit

namespace netlens {

enum class LrpRule { kEpsilon = 0, kGamma = 1, kAlphaBeta = 2, kZPlus = 3, kFlat = 4, kWSquare = 5, kZBox = 6 };

// "epsilon", "gamma", "alpha-beta", "zplus" (or "alpha1-beta0"), "flat", "wsquare", "zbox".
// Throws UsageError naming the valid names.
LrpRule ParseLrpRule(const std::string& name);
std::string LrpRuleName(LrpRule rule);
std::vector<std::string> LrpRuleNames();

// Which rule each affine layer gets, and the rules' parameters.
struct LrpRules {
  LrpRule conv = LrpRule::kEpsilon;   // convolutions
  LrpRule dense = LrpRule::kEpsilon;  // linear layers
  bool has_first = false;             // the layer(s) reading the model input get `first`
  LrpRule first = LrpRule::kEpsilon;
  std::map<std::string, LrpRule> layers;  // by module path, over all of the above
  double epsilon = 1e-9;                  // Captum's EpsilonRule default
  double gamma = 0.25;
  double alpha = 2.0, beta = 1.0;
  bool zero_bias = false;
  bool fold_batch_norm = true;
  // zbox: bounds of the model input, per channel. A layer that reads the input through other ops
  // (a model's own preprocessing: x * std + mean, a channel flip) gets them through those ops.
  std::vector<double> low, high;

  std::string Key() const;  // for the lens' graph cache
};

// Zennit's composites by name ("epsilon-plus-flat", ...) and "epsilon" (every layer epsilon,
// Captum's LRP). Throws UsageError naming the valid names.
LrpRules CompositeRules(const std::string& name);
std::vector<std::string> CompositeNames();

// What a rewrite did, for the log and the manifest.
struct LrpLayerRule {
  std::string layer;       // module path of the layer ("" when the node has none)
  std::string op;          // "conv" | "linear"
  LrpRule rule = LrpRule::kEpsilon;
  std::string batch_norm;  // module path of the folded batch norm, "" when none
};
struct LrpCensus {
  std::vector<LrpLayerRule> affine;
  std::map<std::string, int64_t> normalized;   // sums, poolings, unfolded batch norms by op
  std::map<std::string, int64_t> passed;       // activations and scalings by constants passed through
  std::map<std::string, int64_t> ordinary;     // ops left with a gradient that is not a rule
};

// The qualified op names, for graph rewriting.
constexpr const char* kLrpAffineOp = "netlens::lrp_affine";
constexpr const char* kLrpNormInOp = "netlens::lrp_norm_in";
constexpr const char* kLrpNormOutOp = "netlens::lrp_norm_out";
constexpr const char* kLrpLayerNormOp = "netlens::lrp_layer_norm";

// The float parameters of netlens::lrp_affine: epsilon, gamma, alpha, beta, zero_bias.
std::vector<double> LrpParams(const LrpRules& rules);

void EnsureLrpOpRegistered();

// The ops netlens::lrp_norm_in and lrp_norm_out, for composite ops that carry the rule inside
// (netlens::attention_sdpa).
torch::Tensor LrpNormIn(const torch::Tensor& x);
torch::Tensor LrpNormOut(const torch::Tensor& z, double eps);

// Between Begin and End, the LRP ops add up the relevance their layers absorb (what reaches a
// layer's output minus what it passes to its inputs: the biases' share and the stabilizers'),
// summed over the batch, for the conservation check: sum(input relevance) + absorbed = output
// relevance, where every op on the way has a rule. One tally at a time.
void BeginLrpTally();
double EndLrpTally();

// Rewrites a forward graph (inlined, its first input `self`, its second the model input) for
// LRP under `rules`, and says what it did. Throws UsageError for a rule given to a module path that
// names no convolution or linear layer (with the closest that do).
LrpCensus RewriteForLrp(torch::jit::Graph& graph, const LrpRules& rules);

}  // namespace netlens
