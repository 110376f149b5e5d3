// Oracles for deeplift and deeplift-shap: a linear model, a one-hidden-layer ReLU network computed
// by hand (every form of ReLU the lens rewrites), summation-to-delta through max-pooling, and the
// rules written out in eager PyTorch on SqueezeNet 1.0.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <functional>

#include "netlens/core/errors.h"
#include "netlens/model/graph.h"
#include "netlens/model/rectifier_op.h"
#include "netlens/techniques/common.h"
#include "tests/techniques/fixtures.h"

namespace netlens {
namespace {

using test::LinearModel;
using test::RunTechnique;

TEST(DeepLift, OfALinearModelIsInputMinusBaselineTimesTheWeights) {
  torch::manual_seed(31);
  LinearModel lm(2, 5, 5, 3);
  const torch::Tensor x = torch::randn({1, 2, 5, 5}, torch::kFloat64);
  const auto out = RunTechnique("deeplift", *lm.model, x, 1, {{"baseline", "uniform"}, {"seed", 3}});
  const torch::Tensor b = SeededUniform(x, 3);  // mean 0, std 1: the uniform picture as it is
  EXPECT_TRUE(test::AllClose(out.artifacts[0].tensor, (x - b) * lm.W[1].view({1, 2, 5, 5}), 1e-12));
  EXPECT_NEAR(out.metrics["summation_to_delta"]["delta"].get<double>(), 0, 1e-10);
  const auto shap = RunTechnique("deeplift-shap", *lm.model, x, 1, {{"baselines", {"zero", "uniform"}}, {"seed", 3}});
  EXPECT_TRUE(test::AllClose(shap.artifacts[0].tensor, (x - b / 2) * lm.W[1].view({1, 2, 5, 5}), 1e-12));
}

// x (3x4x4) -> z = W1 x + b1 -> relu (as `form`) -> W2 -> 3 logits, float64.
struct HiddenLayer {
  torch::Tensor W1 = torch::randn({10, 48}, torch::kFloat64), b1 = torch::randn({10}, torch::kFloat64);
  torch::Tensor W2 = torch::randn({3, 10}, torch::kFloat64);
  std::shared_ptr<Model> model;
  explicit HiddenLayer(const std::string& form) {
    torch::jit::Module m("Hidden_" + form, test::SharedUnit(), true);
    m.register_parameter("w1", W1, false);
    m.register_parameter("b1", b1, false);
    m.register_parameter("w2", W2, false);
    const std::string z = "torch.matmul(torch.flatten(x, 1), self.w1.t()) + self.b1";
    std::string body;
    if (form == "relu") body = "    h = torch.relu(" + z + ")\n";
    if (form == "relu_") body = "    h = " + z + "\n    h = torch.relu_(h)\n";
    if (form == "relu6") body = "    h = torch.relu6(" + z + ")\n";
    if (form == "hardtanh_") body = "    h = " + z + "\n    h = torch.hardtanh_(h, 0.0, 6.0)\n";
    if (body.empty()) body = "    h = torch." + form + "(" + z + ")\n";  // a smooth activation
    m.define("def forward(self, x):\n" + body + "    return torch.matmul(h, self.w2.t())\n");
    model = test::SaveAndLoad(m, 3, 4, 4);
  }
  // The rescale rule by hand: m_j = (relu(z_j) - relu(z0_j)) / (z_j - z0_j).
  torch::Tensor Hand(const torch::Tensor& x, const torch::Tensor& x0, int64_t t, double hi) const {
    const torch::Tensor z = x.flatten().matmul(W1.t()) + b1, z0 = x0.flatten().matmul(W1.t()) + b1;
    const auto act = [&](const torch::Tensor& v) { return hi > 0 ? v.clamp(0, hi) : v.clamp_min(0); };
    const torch::Tensor m = (act(z) - act(z0)) / (z - z0);
    return (x - x0) * (W2[t] * m).matmul(W1).view_as(x);
  }
};

TEST(DeepLift, RescaleRuleOfAHiddenReluLayerEqualsTheHandComputationInEveryForm) {
  torch::manual_seed(32);
  for (const std::string form : {"relu", "relu_", "relu6", "hardtanh_"}) {
    HiddenLayer net(form);
    const torch::Tensor x = torch::randn({1, 3, 4, 4}, torch::kFloat64) * 2;
    const torch::Tensor x0 = torch::zeros_like(x);
    const auto out = RunTechnique("deeplift", *net.model, x, 2);
    const torch::Tensor hand = net.Hand(x, x0, 2, form == "relu" || form == "relu_" ? 0.0 : 6.0);
    EXPECT_TRUE(test::AllClose(out.artifacts[0].tensor, hand, 1e-12)) << form;
    EXPECT_NEAR(out.metrics["summation_to_delta"]["relative_delta"].get<double>(), 0, 1e-10) << form;
    EXPECT_EQ(out.metrics["activations"]["rewritten"], 1) << form;
    // Not the gradient times the difference: the test would prove nothing on a linear stretch.
    const torch::Tensor g = RunTechnique("saliency", *net.model, x, 2).artifacts[0].tensor;
    EXPECT_GT((hand - x * g).abs().max().item<double>(), 1e-3) << form;
  }
}

// The rescale rule on smooth and leaky activations (DeepLIFT's definition for any elementwise
// nonlinearity; Captum's for its ELU, LeakyReLU and Softplus modules): m_j = (f(z_j) - f(z0_j)) /
// (z_j - z0_j), by hand, and the map sums to f(x) - f(x0). Without the rule (the gradient of f) it
// does not.
TEST(DeepLift, RescaleRuleOfAHiddenSmoothLayerEqualsTheHandComputation) {
  torch::manual_seed(36);
  using Fn = std::function<torch::Tensor(const torch::Tensor&)>;
  const std::vector<std::pair<std::string, Fn>> forms{
      {"silu", [](const torch::Tensor& v) { return torch::silu(v); }},
      {"gelu", [](const torch::Tensor& v) { return torch::gelu(v); }},
      {"elu", [](const torch::Tensor& v) { return torch::elu(v); }},
      {"softplus", [](const torch::Tensor& v) { return torch::softplus(v); }},
      {"hardswish_", [](const torch::Tensor& v) { return torch::hardswish(v); }},
  };
  for (const auto& [form, f] : forms) {
    HiddenLayer net(form);
    const torch::Tensor x = torch::randn({1, 3, 4, 4}, torch::kFloat64) * 2;
    const torch::Tensor x0 = torch::zeros_like(x);
    const torch::Tensor z = x.flatten().matmul(net.W1.t()) + net.b1, z0 = x0.flatten().matmul(net.W1.t()) + net.b1;
    const torch::Tensor m = (f(z) - f(z0)) / (z - z0);
    const torch::Tensor hand = (x - x0) * (net.W2[2] * m).matmul(net.W1).view_as(x);
    const auto out = RunTechnique("deeplift", *net.model, x, 2);
    EXPECT_TRUE(test::AllClose(out.artifacts[0].tensor, hand, 1e-12)) << form;
    EXPECT_NEAR(out.metrics["summation_to_delta"]["relative_delta"].get<double>(), 0, 1e-10) << form;
    EXPECT_EQ(out.metrics["activations"]["generalized"], 1) << form;
    EXPECT_EQ(out.metrics["activations"]["left"], 0) << form;
    const torch::Tensor g = RunTechnique("saliency", *net.model, x, 2).artifacts[0].tensor;
    EXPECT_GT((hand - x * g).abs().max().item<double>(), 1e-3) << form;
  }
}

// deeplift (uniform baseline seeded by the trial) and deeplift-shap over `baselines` sum to the
// logit difference on x; deeplift's activation census, for the caller's checks.
Json ExpectSumsToTheLogitDifference(Model& model, const torch::Tensor& x, int64_t trial, const Json& baselines) {
  const auto out = RunTechnique("deeplift", model, x, trial, {{"baseline", "uniform"}, {"seed", trial}});
  const Json& s = out.metrics["summation_to_delta"];
  EXPECT_GT(std::abs(s["logit_difference"].get<double>()), 1e-3);
  EXPECT_NEAR(s["relative_delta"].get<double>(), 0, 1e-10) << s.dump();
  const auto shap = RunTechnique("deeplift-shap", model, x, trial, {{"baselines", baselines}, {"batch_size", 2}});
  EXPECT_NEAR(shap.metrics["summation_to_delta"]["relative_delta"].get<double>(), 0, 1e-10);
  return out.metrics["activations"];
}

// Smooth activations on both sides of a max-pool: the pairs run as one batch (`pairs`), and the
// map sums to the logit difference; without a max-pool the inputs run alone against the
// reference's recorded pass (`inputs`), with the same sum.
TEST(DeepLift, SmoothActivationsSumToTheLogitDifferenceInPairsAndAlone) {
  torch::manual_seed(37);
  for (const bool pool : {true, false}) {
    torch::jit::Module net("DlSmooth", test::SharedUnit(), true);
    net.register_parameter("w", torch::randn({6, 3, 3, 3}, torch::kFloat64), false);
    net.register_parameter("v", torch::randn({4, 6}, torch::kFloat64), false);
    net.define(std::string("def forward(self, x):\n    a = torch.silu(torch.conv2d(x, self.w))\n") +
               (pool ? "    a = torch.max_pool2d(a, [3, 3], [2, 2], [0, 0], [1, 1], True)\n" : "") +
               "    a = torch.gelu(a - 0.5)\n"
               "    return torch.matmul(a.mean([2, 3]), self.v.t())\n");
    auto model = test::SaveAndLoad(net, 3, 11, 11);
    for (int64_t trial = 0; trial < 2; ++trial) {
      const torch::Tensor x = torch::randn({1, 3, 11, 11}, torch::kFloat64);
      const Json activations = ExpectSumsToTheLogitDifference(*model, x, trial, {"zero", "uniform"});
      EXPECT_EQ(activations["backward"], pool ? "pairs" : "inputs");
      EXPECT_EQ(activations["generalized"], 2);
    }
  }
}

// conv -> relu -> max_pool2d(3, 2, ceil_mode) -> relu_ -> mean -> fc: DeepLIFT's multipliers carry
// f(x) - f(x0) exactly through Captum's max-pooling rule; the plain gradient does not.
TEST(DeepLift, SumsToTheLogitDifferenceThroughMaxPooling) {
  torch::manual_seed(33);
  torch::jit::Module conv("DlConv", test::SharedUnit(), true);
  conv.register_parameter("weight", torch::randn({6, 3, 3, 3}, torch::kFloat64), false);
  conv.register_parameter("bias", torch::randn({6}, torch::kFloat64), false);
  conv.define("def forward(self, x):\n    return torch.conv2d(x, self.weight, self.bias)\n");
  torch::jit::Module net("DlPoolNet", test::SharedUnit(), true);
  net.register_module("conv", conv);
  net.register_parameter("v", torch::randn({4, 6}, torch::kFloat64), false);
  net.define(
      "def forward(self, x):\n"
      "    a = torch.relu(self.conv.forward(x))\n"
      "    p = torch.max_pool2d(a, [3, 3], [2, 2], [0, 0], [1, 1], True)\n"
      "    p = torch.relu_(p - 0.5)\n"
      "    return torch.matmul(p.mean([2, 3]), self.v.t())\n");
  auto model = test::SaveAndLoad(net, 3, 11, 11);
  for (int64_t trial = 0; trial < 3; ++trial) {
    const torch::Tensor x = torch::randn({1, 3, 11, 11}, torch::kFloat64);
    ExpectSumsToTheLogitDifference(*model, x, trial, {"zero", "uniform", "black"});
  }
}

// The next job against the same reference replays the reference's recorded pass: the same map to
// the bit. After the parameters change in place (sanity checks re-draw them), the reference runs
// again: the logit difference is f(x) - f(x0) of the new weights, and the map sums to it.
TEST(DeepLift, ReusesTheReferencesPassUntilTheParametersChange) {
  torch::manual_seed(35);
  torch::jit::Module net("DlReuseNet", test::SharedUnit(), true);
  net.register_parameter("w", torch::randn({6, 3, 3, 3}, torch::kFloat64), false);
  net.register_parameter("v", torch::randn({4, 6}, torch::kFloat64), false);
  net.define(
      "def forward(self, x):\n"
      "    a = torch.relu(torch.conv2d(x, self.w) - 0.3)\n"
      "    p = torch.max_pool2d(a, [3, 3], [2, 2], [0, 0], [1, 1], False)\n"
      "    return torch.matmul(torch.relu(p - 0.5).mean([2, 3]), self.v.t())\n");
  auto model = test::SaveAndLoad(net, 3, 11, 11);
  const torch::Tensor x = torch::randn({1, 3, 11, 11}, torch::kFloat64);
  const auto first = RunTechnique("deeplift", *model, x, 1);
  const auto second = RunTechnique("deeplift", *model, x, 1);
  EXPECT_EQ(first.metrics["activations"]["backward"], "inputs");
  EXPECT_EQ(first.metrics["activations"]["reference"], "recorded");
  EXPECT_EQ(second.metrics["activations"]["reference"], "reused");
  EXPECT_TRUE(torch::equal(first.artifacts[0].tensor, second.artifacts[0].tensor));
  {
    torch::NoGradGuard no_grad;
    model->module().attr("w").toTensor().mul_(-1.5);
  }
  model->ParametersChanged();
  const auto changed = RunTechnique("deeplift", *model, x, 1);
  EXPECT_EQ(changed.metrics["activations"]["reference"], "recorded");
  torch::Tensor f;
  {
    torch::NoGradGuard no_grad;
    f = model->module().forward({torch::cat({x, torch::zeros_like(x)})}).toTensor().select(1, 1);
  }
  const Json& s = changed.metrics["summation_to_delta"];
  EXPECT_NEAR(s["logit_difference"].get<double>(), (f[0] - f[1]).item<double>(), 1e-12);
  EXPECT_NEAR(s["relative_delta"].get<double>(), 0, 1e-10) << s.dump();
  EXPECT_FALSE(torch::allclose(changed.artifacts[0].tensor, first.artifacts[0].tensor));
}

// The SqueezeNet figures below were computed (by netlens and by the Python scripts alike) with
// OpenBLAS's Haswell kernels (AVX2), which float64 convolutions go through. With its SkylakeX
// kernels (AVX-512, chosen on an Intel Xeon) netlens and tools/check_deeplift_rules.py still agree
// with each other, but both move: the sum and the summation to delta hold, the absolute sum is
// 127.612 instead of 127.670 (OPENBLAS_CORETYPE=SkylakeX python3 tools/check_deeplift_rules.py).
// The rules branch on near-zero differences and on ties of overlapping max-pool windows, so the
// last bits of a product can move a pixel by 1e-5: the tests pin the kernels.
constexpr const char* kReferenceKernels = "Haswell";

// DeepLIFT on SqueezeNet 1.0, zero baseline, target 281, float64, against the same rules written
// out in eager PyTorch (tools/check_deeplift_rules.py): it sums to the logit difference.
// --max-pool unpool un-pools with max_unpool2d, where one of two overlapping windows that share an
// arg-max wins (SqueezeNet's 3x3 / 2 pools), and loses the sum (DeepLift.EqualsCaptumsOnSqueezeNet).
TEST(DeepLift, FollowsItsRulesOnSqueezeNet) {
  const test::PinnedBlasKernels kernels(kReferenceKernels);
  auto model = test::SharedSqueezeNet("float64");
  if (!model) GTEST_SKIP() << "no shared models at " << test::SharedModels();
  auto gen = at::detail::createCPUGenerator(5);
  const torch::Tensor x = torch::randn({1, 3, 224, 224}, gen, torch::kFloat64);
  const auto out = RunTechnique("deeplift", *model, x, 281);
  const Json& s = out.metrics["summation_to_delta"];
  EXPECT_NEAR(s["logit_difference"].get<double>(), 1.7407768692733416, 1e-9);
  EXPECT_LT(s["relative_delta"].get<double>(), 1e-6) << s.dump();
  const torch::Tensor attr = out.artifacts[0].tensor;
  EXPECT_NEAR(attr.sum().item<double>(), 1.740776869273342, 1e-9);
  EXPECT_NEAR(attr.abs().sum().item<double>(), 127.67004805253792, 1e-9);
  EXPECT_NEAR(attr[0][1][136][164].item<double>(), -0.0442652362076371, 1e-12);
  const auto unpooled = RunTechnique("deeplift", *model, x, 281, {{"max_pool", "unpool"}});
  EXPECT_GT(unpooled.metrics["summation_to_delta"]["relative_delta"].get<double>(), 0.01);
}

// Parity with Captum's DeepLift on SqueezeNet 1.0 (float64, zero baseline, target 281; figures from
// tools/check_captum_deeplift.py). Captum un-pools with max_unpool2d: --max-pool unpool. Where a
// ReLU feeds a max-pool directly (features.1 -> features.2) Captum's hooks for both modules sit on
// one tensor and the ReLU scales the gradient from before the max-pool's rule; with a module that
// copies the tensor between the two (each hook on a tensor of its own), Captum's map is the one
// its rules define, and netlens' equals it. Captum as it is differs from both by exactly that hook
// order (the script reproduces it to 0 with the rules written out that way).
TEST(DeepLift, EqualsCaptumsOnSqueezeNet) {
  const test::PinnedBlasKernels kernels(kReferenceKernels);
  auto model = test::SharedSqueezeNet("float64");
  if (!model) GTEST_SKIP() << "no shared models at " << test::SharedModels();
  auto gen = at::detail::createCPUGenerator(5);
  const torch::Tensor x = torch::randn({1, 3, 224, 224}, gen, torch::kFloat64);
  const auto out = RunTechnique("deeplift", *model, x, 281, {{"max_pool", "unpool"}});
  const torch::Tensor attr = out.artifacts[0].tensor;
  // Captum, hooks separated: convergence delta -1.3855177333788369.
  EXPECT_NEAR(attr.sum().item<double>(), 0.3552591358945048, 1e-9);
  EXPECT_NEAR(attr.abs().sum().item<double>(), 47.0203542334429, 1e-9);
  EXPECT_NEAR(attr[0][1][129][139].item<double>(), 0.013730611973665454, 1e-12);
  EXPECT_NEAR(attr[0][1][216][81].item<double>(), 0.010892847105690412, 1e-12);
  EXPECT_NEAR(attr[0][0][5][193].item<double>(), 0.010622464737175409, 1e-12);
  const Json& s = out.metrics["summation_to_delta"];
  EXPECT_NEAR(s["delta"].get<double>(), -1.3855177333788369, 1e-9) << s.dump();
}

// The rescale rule's and the max-pooling rule's operators, called through the dispatcher as the
// lens calls them.
struct RuleOperators {
  c10::TypedOperatorHandle<torch::Tensor(const torch::Tensor&, double, double, int64_t)> rectifier;
  c10::TypedOperatorHandle<torch::Tensor(const torch::Tensor&, c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef,
                                         c10::IntArrayRef, bool, bool)>
      pool;
};
RuleOperators RuleOps() {
  auto& dispatcher = c10::Dispatcher::singleton();
  return {dispatcher.findSchemaOrThrow("netlens::rectifier", "")
              .typed<torch::Tensor(const torch::Tensor&, double, double, int64_t)>(),
          dispatcher.findSchemaOrThrow("netlens::deeplift_max_pool2d", "")
              .typed<torch::Tensor(const torch::Tensor&, c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef,
                                   c10::IntArrayRef, bool, bool)>()};
}

// Max-pooling window geometries the CPU kernels walk in bands of rows: overlapping windows
// (SqueezeNet's, in ceil mode too), padding (ResNet's), gaps between windows, dilation, and a
// floor mode that leaves the last row out.
struct PoolGeometry {
  std::vector<int64_t> kernel, stride, padding, dilation;
  bool ceil_mode;
  torch::Tensor Pool(const torch::Tensor& x) const {
    return at::max_pool2d(x, kernel, stride, padding, dilation, ceil_mode);
  }
  friend std::ostream& operator<<(std::ostream& os, const PoolGeometry& g) {
    return os << "kernel " << g.kernel << " stride " << g.stride << " padding " << g.padding << " dilation "
              << g.dilation << (g.ceil_mode ? " ceil" : "");
  }
};
std::vector<PoolGeometry> PoolGeometries() {
  return {{{3, 3}, {2, 2}, {0, 0}, {1, 1}, false}, {{3, 3}, {2, 2}, {0, 0}, {1, 1}, true},
          {{3, 3}, {2, 2}, {1, 1}, {1, 1}, false}, {{2, 2}, {3, 3}, {0, 0}, {1, 1}, false},
          {{3, 3}, {1, 1}, {1, 1}, {2, 2}, false}, {{2, 2}, {2, 2}, {0, 0}, {1, 1}, false}};
}

// The summing max-pooling rule's CPU kernel against the rule written out in tensor operations, for
// every geometry in both layouts: per window the input's share g (max(y, y0) - y0) to the input's
// arg-max and the reference's g0 (y - max(y, y0)) to the reference's; where input and reference
// differ both halves get the sum over x - x0, where they agree each its ordinary gradient.
TEST(DeepLift, MaxPoolKernelFollowsTheRuleForEveryWindowGeometry) {
  const auto& pool = RuleOps().pool;
  auto gen = at::detail::createCPUGenerator(13);
  for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
    for (const PoolGeometry& geometry : PoolGeometries()) {
      // 2 pairs, 5 channels, 9 x 11; zero at a third of the elements (as behind a ReLU), and the
      // reference equal to the input on channels 0-1 of the first pair.
      torch::Tensor a = torch::randn({2, 5, 9, 11}, gen, torch::kFloat64).clamp_min(-0.5);
      torch::Tensor r = torch::randn({2, 5, 9, 11}, gen, torch::kFloat64).clamp_min(-0.5);
      a.clamp_min_(0);
      r.clamp_min_(0);
      r[0].slice(0, 0, 2).copy_(a[0].slice(0, 0, 2));
      const torch::Tensor x = torch::cat({a, r}).contiguous(format).requires_grad_(true);
      const PoolGeometry& k = geometry;
      const torch::Tensor y = pool.call(x, k.kernel, k.stride, k.padding, k.dilation, k.ceil_mode, false);
      const torch::Tensor g = torch::randn(y.sizes(), gen, torch::kFloat64);
      const torch::Tensor grad = torch::autograd::grad({y}, {x}, {g})[0];
      // The rule, written out.
      const auto [ya, ia] = at::max_pool2d_with_indices(a, k.kernel, k.stride, k.padding, k.dilation, k.ceil_mode);
      const auto [yr, ir] = at::max_pool2d_with_indices(r, k.kernel, k.stride, k.padding, k.dilation, k.ceil_mode);
      const torch::Tensor ga = g.slice(0, 0, 2), gr = g.slice(0, 2), top = at::max(ya, yr);
      auto route = [](const torch::Tensor& like, const torch::Tensor& indices, const torch::Tensor& v) {
        return torch::zeros_like(like).flatten(2).scatter_add_(2, indices.flatten(2), v.flatten(2)).view_as(like);
      };
      const torch::Tensor shared = (route(a, ia, ga * (top - yr)) + route(r, ir, gr * (ya - top))) / (a - r);
      const torch::Tensor agree = (a - r).abs() < 1e-10;
      auto ordinary = [&](const torch::Tensor& gv, const torch::Tensor& v, const torch::Tensor& indices) {
        return at::max_pool2d_with_indices_backward(gv, v, k.kernel, k.stride, k.padding, k.dilation, k.ceil_mode,
                                                    indices);
      };
      const torch::Tensor expected = torch::cat({torch::where(agree, ordinary(ga, a, ia), shared),
                                                 torch::where(agree, ordinary(gr, r, ir), shared)});
      EXPECT_GT(agree.logical_and(ordinary(ga, a, ia) != 0).sum().item<int64_t>(), 0) << geometry;
      EXPECT_TRUE(test::AllClose(grad, expected, 1e-12))
          << format << " " << geometry << " max diff " << (grad - expected).abs().max();
    }
  }
}

// The rules' CPU kernels read channels-last tensors and the channel slices a concatenation's
// backward hands on (SqueezeNet's Fire modules) in place. Called through the dispatcher as the
// lens calls them, each under a concatenation: the rescale rule against its formula, and the
// max-pooling rule in both layouts against each other and against summation-to-delta.
TEST(DeepLift, RuleKernelsReadEveryLayout) {
  const RuleOperators ops = RuleOps();
  const auto& rectifier = ops.rectifier;
  const auto& pool = ops.pool;
  const auto rule = static_cast<int64_t>(BackwardRule::kDeepLift);
  auto gen = at::detail::createCPUGenerator(11);
  for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
    // Rescale: 2 pairs; the reference equals the input at some elements (the ordinary gradient).
    torch::Tensor x = torch::randn({4, 6, 5, 7}, gen, torch::kFloat64);
    x.slice(0, 2).slice(1, 0, 2).copy_(x.slice(0, 0, 2).slice(1, 0, 2));
    x = x.contiguous(format).requires_grad_(true);
    const torch::Tensor other = torch::randn({4, 3, 5, 7}, gen, torch::kFloat64).contiguous(format);
    const torch::Tensor w = torch::randn({4, 9, 5, 7}, gen, torch::kFloat64);
    const torch::Tensor y = torch::cat({rectifier.call(x, 0.0, 6.0, rule), other}, 1);
    const torch::Tensor grad = torch::autograd::grad({(y * w).sum()}, {x})[0];
    const torch::Tensor a = x.detach().slice(0, 0, 2), r = x.detach().slice(0, 2);
    const torch::Tensor m = (a.clamp(0, 6) - r.clamp(0, 6)) / (a - r);
    const torch::Tensor same = (a - r).abs() < 1e-10;
    const torch::Tensor wx = w.slice(1, 0, 6);
    const torch::Tensor expected = torch::cat(
        {wx.slice(0, 0, 2) * torch::where(same, ((a > 0) & (a < 6)).to(torch::kFloat64), m),
         wx.slice(0, 2) * torch::where(same, ((r > 0) & (r < 6)).to(torch::kFloat64), m)});
    EXPECT_TRUE(test::AllClose(grad, expected, 1e-15)) << format;
  }
  // Max-pooling, 3x3 / 2 (overlapping windows), one pair: the same gradients in both layouts,
  // and sum((x - x0) * m) = sum(g * (y - y0)).
  const torch::Tensor x = torch::randn({2, 4, 9, 11}, gen, torch::kFloat64);
  const torch::Tensor w = torch::randn({1, 6, 4, 5}, gen, torch::kFloat64).expand({2, 6, 4, 5});
  std::vector<torch::Tensor> grads;
  for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
    const torch::Tensor xf = x.contiguous(format).requires_grad_(true);
    const torch::Tensor y = pool.call(xf, {3, 3}, {2, 2}, {0, 0}, {1, 1}, false, false);
    const torch::Tensor both = torch::cat({y, torch::zeros({2, 2, 4, 5}, torch::kFloat64)}, 1);
    grads.push_back(torch::autograd::grad({(both * w).sum()}, {xf})[0]);
    const torch::Tensor dy = (y[0] - y[1]).detach();
    EXPECT_NEAR(((x[0] - x[1]) * grads.back()[0]).sum().item<double>(), (w[0].slice(0, 0, 4) * dy).sum().item<double>(), 1e-10)
        << format;
  }
  EXPECT_TRUE(test::AllClose(grads[0], grads[1], 1e-15));
}

// The rules' backward over the inputs alone, their references recorded by a forward pass of their
// own (DeepLiftTape), equals the input half of the backward over pairs [x; x0] whose halves get
// the same gradient: the rescale rule (relu6, so both bounds) and both max-pooling rules, on the
// CPU kernels (both layouts) and on the tensor operations (Captum's un-pooling).
TEST(DeepLift, RulesOfTheInputsAloneEqualTheInputHalfOfPairs) {
  const RuleOperators ops = RuleOps();
  const auto& rectifier = ops.rectifier;
  const auto& pool = ops.pool;
  const auto rule = static_cast<int64_t>(BackwardRule::kDeepLift);
  auto gen = at::detail::createCPUGenerator(12);
  for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
    for (const PoolGeometry& geometry : PoolGeometries())
    for (const bool overwrite : {false, true}) {
      // 2 pairs, 6 channels; input and reference agree on channels 0-1 of the first pair, and
      // both are zero at a quarter of the elements (as behind a ReLU), where the rules' arg-maxes differ.
      torch::Tensor a = torch::randn({2, 6, 9, 11}, gen, torch::kFloat64) * 3;
      torch::Tensor r = torch::randn({2, 6, 9, 11}, gen, torch::kFloat64) * 3;
      r[0].slice(0, 0, 2).copy_(a[0].slice(0, 0, 2));
      a.masked_fill_(torch::rand({2, 6, 9, 11}, gen, torch::kFloat64) < 0.25, 0);
      r.masked_fill_(torch::rand({2, 6, 9, 11}, gen, torch::kFloat64) < 0.25, 0);
      const torch::Tensor w = torch::randn(geometry.Pool(a).sizes(), gen, torch::kFloat64);
      // f(v) = sum(w * maxpool(relu6(v))): the same w for both halves of the pairs.
      auto f = [&](const torch::Tensor& v) {
        const PoolGeometry& g = geometry;
        return pool.call(rectifier.call(v, 0.0, 6.0, rule), g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode,
                         overwrite);
      };
      const torch::Tensor pairs_in = torch::cat({a, r}).contiguous(format).requires_grad_(true);
      const torch::Tensor pairs_grad =
          torch::autograd::grad({(f(pairs_in) * torch::cat({w, w})).sum()}, {pairs_in})[0].slice(0, 0, 2);
      DeepLiftTape tape;
      {
        torch::NoGradGuard no_grad;
        DeepLiftTapeScope record(tape, false);
        f(r.contiguous(format));
      }
      torch::Tensor grad;
      {
        DeepLiftTapeScope replay(tape, true);
        const torch::Tensor in = a.contiguous(format).requires_grad_(true);
        grad = torch::autograd::grad({(f(in) * w).sum()}, {in})[0];
      }
      EXPECT_TRUE(tape.Exhausted());
      EXPECT_GT(pairs_grad.abs().max().item<double>(), 0.1);
      EXPECT_TRUE(test::AllClose(grad, pairs_grad, 1e-13)) << format << " " << geometry << " overwrite " << overwrite
                                                            << " max diff " << (grad - pairs_grad).abs().max();
    }
  }
  // A replay whose operations differ from the recording names both shapes.
  DeepLiftTape tape;
  {
    torch::NoGradGuard no_grad;
    DeepLiftTapeScope record(tape, false);
    rectifier.call(torch::zeros({1, 2, 3, 3}, torch::kFloat64), 0.0, INFINITY, rule);
  }
  DeepLiftTapeScope replay(tape, true);
  try {
    rectifier.call(torch::zeros({1, 2, 4, 4}, torch::kFloat64).requires_grad_(true), 0.0, INFINITY, rule);
    ADD_FAILURE() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("differs from the reference's (input [1, 2, 4, 4], reference [1, 2, 3, 3])"),
              std::string::npos) << e.what();
  }
}

// Which graphs take the one backward pass: none or one max-pool with only linear maps, sums,
// average poolings and rectifiers above it; not two max-pools, a gate (a product of two of the
// input's descendants) or a softmax above the pool.
TEST(DeepLift, OneBackwardWhereTheHalvesGradientsAgree) {
  auto graph_of = [](const std::string& body) {
    torch::jit::Module m("G", test::SharedUnit(), true);
    m.register_parameter("w", torch::randn({4, 3, 3, 3}, torch::kFloat64), false);
    m.register_parameter("v", torch::randn({5, 4}, torch::kFloat64), false);
    m.define("def forward(self, x):\n    a = torch.relu(torch.conv2d(x, self.w, None, 1, 1))\n" + body);
    return InlinedForward(m);
  };
  const std::string pool = "    p = torch.max_pool2d(a, [2, 2], [2, 2], [0, 0], [1, 1], False)\n";
  const std::string head = "    return torch.matmul(q.mean([2, 3]), self.v.t())\n";
  EXPECT_TRUE(DeepLiftOneBackwardIsExact(*graph_of("    q = a\n" + head)));
  EXPECT_TRUE(DeepLiftOneBackwardIsExact(*graph_of(pool + "    q = torch.relu6(p + 0.5 * p) - 1.0\n" + head)));
  EXPECT_FALSE(DeepLiftOneBackwardIsExact(
      *graph_of(pool + "    q = torch.max_pool2d(p, [2, 2], [2, 2], [0, 0], [1, 1], False)\n" + head)));
  EXPECT_FALSE(DeepLiftOneBackwardIsExact(*graph_of(pool + "    q = p * torch.sigmoid(p.mean([2, 3], True))\n" + head)));
  EXPECT_FALSE(DeepLiftOneBackwardIsExact(*graph_of(pool + "    q = p * a.mean()\n" + head)));
  EXPECT_FALSE(DeepLiftOneBackwardIsExact(*graph_of(pool + "    q = torch.softmax(p, 1)\n" + head)));
}

}  // namespace
}  // namespace netlens
