// netlens::rectifier(Tensor x, float lo, float hi, int rule) -> Tensor
//
// Forward: clamp(x, lo, hi) (hi = inf for ReLU, 6 for ReLU6). Backward depends on `rule`:
//   0 (vanilla)   grad_in = grad_out * [lo < x < hi]                 (the ordinary gradient)
//   1 (guided)    grad_in = grad_out * [lo < x < hi] * [grad_out > 0] (Springenberg et al.)
//   2 (deconvnet) grad_in = relu(grad_out)                            (Zeiler & Fergus)
//   3 (deeplift)  the batch holds inputs and their references as halves [x; x0]; both halves get
//                 grad_out * (y - y0) / (x - x0), or the ordinary gradient where |x - x0| < 1e-10
//                 (the rescale rule of Shrikumar et al. 2017, as Captum's DeepLift)
//   4 (deeplift, Captum's un-pooling) the same for rectifiers; see below for max-pooling
//   5 (lrp)       grad_in = grad_out: relevance passes activations unchanged (model/lrp.h)
// The lens puts this op in place of every relu, relu_, relu6 and hardtanh(0, max) of a graph
// to change the backward rule of a whole model, whatever form its ReLUs take. Under the deeplift
// rules it also puts netlens::deeplift_max_pool2d in place of max_pool2d: forward max_pool2d,
// backward Captum's DeepLift rule for max-pooling (the differences of the pooled maxima of input
// and reference, routed through both halves' arg-max positions, over the input difference). Rule
// 3 routes by adding up what overlapping windows send to a shared arg-max, which keeps
// summation-to-delta; rule 4 un-pools as Captum does (max_unpool2d: one window's value wins).
//
// netlens::activation_rule(Tensor x, Tensor y, int rule) -> Tensor
//
// Opt-in (--smooth-activations): netlens' generalization of the guided and deconvnet rules to the
// smooth and leaky activations of post-2019 CNNs (SiLU, GELU, Hardswish, ELU, SELU, CELU,
// LeakyReLU, RReLU, PReLU, Mish, Softplus, ...). y = f(x) is computed by the model's own op; this
// op returns it and decides where the incoming gradient goes:
//   1 (guided)    relu(grad_out) on to f's backward: grad_in = f'(x) * relu(grad_out)
//   2 (deconvnet) grad_in = relu(grad_out), f's backward skipped
//   5 (lrp)       grad_in = grad_out, f's backward skipped (relevance passes through)
//   any other     grad_out on to f's backward (the ordinary gradient)
// For a ReLU both reduce to the rules above. In-place forms (silu_, ...) become out-of-place
// first, so that x still holds the activation's input.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace netlens {

enum class BackwardRule { kVanilla = 0, kGuided = 1, kDeconvnet = 2, kDeepLift = 3, kDeepLiftCaptum = 4, kLrp = 5 };

inline bool IsDeepLift(BackwardRule rule) {
  return rule == BackwardRule::kDeepLift || rule == BackwardRule::kDeepLiftCaptum;
}

// The qualified op names, for graph rewriting.
constexpr const char* kRectifierOp = "netlens::rectifier";
constexpr const char* kDeepLiftMaxPoolOp = "netlens::deeplift_max_pool2d";
constexpr const char* kActivationRuleOp = "netlens::activation_rule";

// DeepLIFT with one backward pass over the inputs alone. Where the batch-of-pairs backward would
// give both halves the same gradient everywhere the max-pooling rule reads it
// (DeepLiftOneBackwardIsExact in model/graph.h), the references run a forward pass of their own
// while a DeepLiftTape records, in order, what each deeplift op reads of them (a rectifier's
// input; a max-pool's input, maxima and arg-maxes); then the inputs run under the same graph
// while the tape replays, and each op's backward computes the multiplier of the input from its
// own tensors and the reference's: the same numbers, for 2 forwards + 1 backward instead of a
// forward and a backward of twice the batch. Thread-local: the scope covers one thread's forward
// passes (the backward reads what the ops saved).
class DeepLiftTape {
 public:
  // One deeplift op's step, `own` its tensors (input first): recording, keeps them and returns
  // nothing; replaying, returns the reference's tensors of the same op, and throws if the input
  // pass ran other ops than the reference pass (or those tensors were changed in place since).
  std::vector<torch::Tensor> Step(std::vector<torch::Tensor> own);
  // Whether the input pass read every recorded entry.
  bool Exhausted() const { return next_ == entries_.size(); }

 private:
  friend class DeepLiftTapeScope;
  void Record(std::vector<torch::Tensor> tensors);
  std::vector<torch::Tensor> Replay(const torch::Tensor& input, size_t count);
  struct Entry {
    std::vector<torch::Tensor> tensors;
    std::vector<uint32_t> versions;
  };
  std::vector<Entry> entries_;
  size_t next_ = 0;
  bool replaying_ = false;
};

// While alive, this thread's deeplift ops record into `tape` (replay false) or replay it.
class DeepLiftTapeScope {
 public:
  DeepLiftTapeScope(DeepLiftTape& tape, bool replay);
  ~DeepLiftTapeScope();
  DeepLiftTapeScope(const DeepLiftTapeScope&) = delete;
  DeepLiftTapeScope& operator=(const DeepLiftTapeScope&) = delete;

 private:
  DeepLiftTape* previous_;
};

// Makes sure the translation unit that registers the op is linked in.
void EnsureRectifierOpRegistered();

}  // namespace netlens
