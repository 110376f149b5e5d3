// Exact oracles for SmoothGrad, integrated gradients, occlusion, layer gradients and the CAM
// variants on models small enough to compute by hand.
#include <gtest/gtest.h>
#include <filesystem>
#include <ATen/CPUGeneratorImpl.h>

#include "netlens/core/errors.h"
#include "netlens/image/render.h"
#include "netlens/runner/common_options.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/registry.h"
#include "tests/techniques/fixtures.h"

namespace netlens {
namespace {

using test::CamNet;
using test::LinearModel;
using test::RunTechnique;

TEST(IntegratedGradients, LinearModelIsInputMinusBaselineTimesWeightForEveryMethod) {
  torch::manual_seed(0);
  LinearModel lm;
  const torch::Tensor x = torch::randn({1, 1, 6, 6}, torch::kFloat64);
  for (const char* method : {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"}) {
    for (int steps : {1, 7, 50}) {
      if (steps == 1 && std::string(method) == "riemann_trapezoid") continue;
      const auto out = RunTechnique("integrated-gradients", *lm.model, x, 2, {{"method", method}, {"steps", steps}, {"batch_size", 4}});
      EXPECT_TRUE(test::AllClose(out.artifacts[0].tensor, x * lm.W[2].view({1, 1, 6, 6}), 1e-12)) << method << " " << steps;
      EXPECT_NEAR(out.metrics["completeness"]["delta"].get<double>(), 0.0, 1e-10) << method;
    }
  }
}

TEST(IntegratedGradients, RulesMatchCaptum) {
  std::vector<double> a, w;
  IntegrationRule("gausslegendre", 3, a, w);  // nodes -sqrt(3/5), 0, sqrt(3/5); weights 5/9, 8/9, 5/9
  EXPECT_NEAR(a[0], 0.5 * (1 - std::sqrt(0.6)), 1e-15);
  EXPECT_NEAR(a[1], 0.5, 1e-15);
  EXPECT_NEAR(w[0], 5.0 / 18, 1e-14);
  EXPECT_NEAR(w[1], 8.0 / 18, 1e-14);
  IntegrationRule("gausslegendre", 50, a, w);
  double sum = 0;
  for (double v : w) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-13);
  // Captum's points; the trapezoid rule's weights (Captum's are 0.1, 0.2, 0.2, 0.2, 0.1: docs).
  IntegrationRule("riemann_trapezoid", 5, a, w);
  EXPECT_EQ(a, (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  EXPECT_EQ(w, (std::vector<double>{0.125, 0.25, 0.25, 0.25, 0.125}));
  IntegrationRule("riemann_middle", 4, a, w);
  EXPECT_EQ(a, (std::vector<double>{0.125, 0.375, 0.625, 0.875}));
}

// 3x4x4 -> 32 -> relu -> 32 -> relu -> 4, float64.
std::shared_ptr<Model> ReluMlp() {
  torch::jit::Module m("Mlp", test::SharedUnit(), true);
  m.register_parameter("w1", torch::randn({32, 3 * 4 * 4}, torch::kFloat64) * 0.5, false);
  m.register_parameter("w2", torch::randn({32, 32}, torch::kFloat64) * 0.5, false);
  m.register_parameter("w3", torch::randn({4, 32}, torch::kFloat64) * 0.5, false);
  m.define(
      "def forward(self, x):\n"
      "    h = torch.relu(torch.matmul(torch.flatten(x, 1), self.w1.t()))\n"
      "    h = torch.relu(torch.matmul(h, self.w2.t()))\n"
      "    return torch.matmul(h, self.w3.t())\n");
  return test::SaveAndLoad(m, 3, 4, 4);
}

TEST(IntegratedGradients, CompletenessWithinOnePercentOnAReluNetwork) {
  torch::manual_seed(1);
  auto model = ReluMlp();
  const torch::Tensor x = torch::randn({1, 3, 4, 4}, torch::kFloat64);
  const auto out = RunTechnique("integrated-gradients", *model, x, 1, {{"steps", 50}});
  EXPECT_LT(out.metrics["completeness"]["relative_delta"].get<double>(), 0.01) << out.metrics.dump();
  EXPECT_GT(std::abs(out.metrics["completeness"]["logit_difference"].get<double>()), 0.1);
}

TEST(SmoothGrad, ZeroNoiseEqualsThePlainGradientAndSeedsReproduce) {
  torch::manual_seed(2);
  LinearModel lm;
  const torch::Tensor x = torch::randn({1, 1, 6, 6}, torch::kFloat64);
  const auto plain = RunTechnique("saliency", *lm.model, x, 1).artifacts[0].tensor;
  const auto sg = RunTechnique("smoothgrad", *lm.model, x, 1, {{"noise", 0.0}, {"samples", 5}, {"batch_size", 2}});
  EXPECT_TRUE(test::AllClose(sg.artifacts[0].tensor, plain, 1e-12));
  const auto sq = RunTechnique("smoothgrad", *lm.model, x, 1, {{"variant", "smoothgrad_sq"}, {"samples", 3}});
  EXPECT_TRUE(test::AllClose(sq.artifacts[0].tensor, plain * plain, 1e-12));  // linear: g constant
  const auto var = RunTechnique("smoothgrad", *lm.model, x, 1, {{"variant", "vargrad"}, {"samples", 3}});
  EXPECT_TRUE(test::AllClose(var.artifacts[0].tensor, torch::zeros_like(plain), 1e-12));
}

TEST(SmoothGrad, NoiseMattersOnReluModelsAndTheSeedFixesIt) {
  torch::manual_seed(3);
  torch::jit::Module m("R", test::SharedUnit(), true);
  m.register_parameter("w", torch::randn({2, 16}, torch::kFloat64), false);
  m.define("def forward(self, x):\n    return torch.matmul(torch.relu(torch.flatten(x, 1)), self.w.t())\n");
  auto model = test::SaveAndLoad(m, 1, 4, 4);
  const torch::Tensor x = torch::randn({1, 1, 4, 4}, torch::kFloat64);
  const Json opts{{"noise", 1.0}, {"noise_mode", "absolute"}, {"samples", 64}, {"seed", 7}};
  const auto a = RunTechnique("smoothgrad", *model, x, 0, opts).artifacts[0].tensor;
  const auto b = RunTechnique("smoothgrad", *model, x, 0, opts).artifacts[0].tensor;
  EXPECT_TRUE(torch::equal(a, b));
  const auto plain = RunTechnique("saliency", *model, x, 0).artifacts[0].tensor;
  EXPECT_FALSE(test::AllClose(a, plain, 1e-3));
  // E[g] = w * P(x + noise > 0): the weight row scaled elementwise by a probability in [0, 1].
  const torch::Tensor w = model->Logits(torch::eye(16, torch::kFloat64).view({16, 1, 4, 4})).select(1, 0).view({1, 1, 4, 4});
  const torch::Tensor ratio = a / w;
  EXPECT_TRUE(((ratio >= 0) & (ratio <= 1)).all().item<bool>());
}

// Brute-force reference of Captum's occlusion for a linear model: per window the logit drop is
// sum over the window of w * (x - baseline); each element averages the drops of its windows.
torch::Tensor OcclusionReference(const torch::Tensor& x, const torch::Tensor& w, int64_t win, int64_t stride) {
  const int64_t H = x.size(2), W = x.size(3);
  torch::Tensor sum = torch::zeros_like(x), count = torch::zeros_like(x);
  for (int64_t i = 0; i <= (H - win + stride - 1) / stride; ++i)
    for (int64_t j = 0; j <= (W - win + stride - 1) / stride; ++j) {
      const int64_t r0 = i * stride, c0 = j * stride, r1 = std::min(H, r0 + win), c1 = std::min(W, c0 + win);
      const double drop = (w * x).slice(2, r0, r1).slice(3, c0, c1).sum().item<double>();
      sum.slice(2, r0, r1).slice(3, c0, c1) += drop;
      count.slice(2, r0, r1).slice(3, c0, c1) += 1;
    }
  return sum / count;
}

TEST(Occlusion, AdditiveModelGetsItsPerWindowContributions) {
  torch::manual_seed(4);
  LinearModel lm(1, 7, 7);
  const torch::Tensor x = torch::randn({1, 1, 7, 7}, torch::kFloat64);
  const torch::Tensor w = lm.W[1].view({1, 1, 7, 7});
  for (auto [win, stride] : std::vector<std::pair<int, int>>{{3, 2}, {3, 3}, {4, 1}, {7, 1}}) {
    const auto out = RunTechnique("occlusion", *lm.model, x, 1, {{"window", win}, {"stride", stride}, {"batch_size", 5}});
    EXPECT_TRUE(test::AllClose(out.artifacts[0].tensor, OcclusionReference(x, w, win, stride), 1e-12))
        << win << "/" << stride;
  }
  EXPECT_THROW(RunTechnique("occlusion", *lm.model, x, 1, {{"window", 2}, {"stride", 3}}), UsageError);
}

TEST(Occlusion, ProbabilityModeTilesTheInput) {
  torch::manual_seed(5);
  LinearModel lm(1, 6, 6);
  const torch::Tensor x = torch::randn({1, 1, 6, 6}, torch::kFloat64);
  const auto out = RunTechnique("occlusion", *lm.model, x, 0, {{"mode", "probability"}, {"window", 3}});
  ASSERT_EQ(out.artifacts.size(), 3u);
  EXPECT_EQ(out.artifacts[0].name, "occlusion_drop");  // rendered: red = important
  EXPECT_EQ(out.artifacts[0].kind, Artifact::Kind::kLayerMap);
  EXPECT_EQ(out.artifacts[1].name, "occlusion_probability");
  EXPECT_EQ(out.artifacts[1].kind, Artifact::Kind::kRawOnly);
  EXPECT_EQ(out.artifacts[1].tensor.sizes().vec(), (std::vector<int64_t>{1, 1, 2, 2}));
  // Top-left tile occluded by hand.
  torch::Tensor occluded = x.clone();
  occluded.slice(2, 0, 3).slice(3, 0, 3).zero_();
  const double p = torch::softmax(lm.model->Logits(occluded), 1)[0][0].item<double>();
  const double clean = torch::softmax(lm.model->Logits(x), 1)[0][0].item<double>();
  EXPECT_NEAR(out.artifacts[1].tensor[0][0][0][0].item<double>(), p, 1e-12);
  EXPECT_NEAR(out.artifacts[0].tensor[0][0][0][0].item<double>(), clean - p, 1e-12);
}

TEST(CamVariants, MatchHandComputationOnATinyConvNet) {
  torch::manual_seed(6);
  CamNet net;
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const int64_t t = 1;
  const torch::Tensor A = net.A(x), g = net.dA(x, t);
  const torch::Tensor sumA = A.sum({2, 3}, true);
  torch::Tensor aij = g * g / (2 * g * g + sumA * g * g * g + 1e-6);
  aij = torch::where(g != 0, aij, torch::zeros_like(aij));
  std::map<std::string, torch::Tensor> expected{
      {"gradcam++", ((g.clamp_min(0) * aij).sum({2, 3}, true) * A).sum(1, true)},
      {"xgradcam", ((g * A / (sumA + 1e-7)).sum({2, 3}, true) * A).sum(1, true)},
      {"layercam", (g.clamp_min(0) * A).sum(1, true)},
      {"hirescam", (g * A).sum(1, true)},
  };
  // Ablation: zero channel k by hand.
  const double y = net.Logits(A)[0][t].item<double>();
  torch::Tensor ablation_w = torch::zeros({1, 4, 1, 1}, torch::kFloat64);
  for (int64_t k = 0; k < 4; ++k) {
    torch::Tensor a = A.clone();
    a.select(1, k).zero_();
    ablation_w[0][k][0][0] = (y - net.Logits(a)[0][t].item<double>()) / y;
  }
  expected["ablationcam"] = (ablation_w * A).sum(1, true);
  // Score-CAM: masks are the min-max scaled, bilinearly upsampled channels, upsampled as
  // pytorch-grad-cam does (nn.UpsamplingBilinear2d: align_corners=True, corners map to corners),
  // written out by hand here.
  const auto upsample_corners = [](const torch::Tensor& a, int64_t H, int64_t W) {
    const int64_t h = a.size(0), w = a.size(1);
    torch::Tensor out = torch::zeros({H, W}, torch::kFloat64);
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) {
        const double y = static_cast<double>(i) * (h - 1) / (H - 1), x = static_cast<double>(j) * (w - 1) / (W - 1);
        const int64_t y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(x);
        const int64_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
        const double dy = y - y0, dx = x - x0;
        out[i][j] = (1 - dy) * ((1 - dx) * a[y0][x0] + dx * a[y0][x1]) + dy * ((1 - dx) * a[y1][x0] + dx * a[y1][x1]);
      }
    return out;
  };
  torch::Tensor scores = torch::zeros({4}, torch::kFloat64);
  for (int64_t k = 0; k < 4; ++k) {
    torch::Tensor m = upsample_corners(A[0][k], 6, 6);
    m = (m - m.min()) / (m.max() - m.min() + 1e-8);
    scores[k] = net.Logits(net.A(x * m))[0][t];
  }
  expected["scorecam"] = (torch::softmax(scores, 0).view({1, 4, 1, 1}) * A).sum(1, true);
  for (const auto& [name, want] : expected) {
    const auto out = RunTechnique(name, *net.model, x, t, {{"layer", "conv"}});
    ASSERT_EQ(out.artifacts.size(), 1u) << name;
    EXPECT_TRUE(test::AllClose(out.artifacts[0].tensor, want, 1e-10)) << name;
  }
}

TEST(CamVariants, EigenCamIsTheFirstPrincipalComponentAndSeveralLayersAreFused) {
  torch::manual_seed(7);
  CamNet net;
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const auto out = RunTechnique("eigencam", *net.model, x, 0, {{"layer", {"conv", "conv-0"}}});
  ASSERT_EQ(out.artifacts.size(), 3u);
  EXPECT_EQ(out.artifacts[2].layer, "fused");
  EXPECT_EQ(out.artifacts[2].tensor.sizes().vec(), (std::vector<int64_t>{1, 1, 6, 6}));
  // Projection onto the top right-singular vector: its squared norm is the top eigenvalue of the
  // centred covariance, the largest of all unit directions.
  const torch::Tensor m = net.A(x)[0].reshape({4, 16}).t();
  const torch::Tensor c = m - m.mean(0, true);
  const double top = torch::linalg_eigvalsh(c.t().matmul(c), "L").max().item<double>();
  EXPECT_NEAR(out.artifacts[0].tensor.pow(2).sum().item<double>(), top, 1e-9 * top);
}

TEST(LayerGradient, ChannelAndNeuronGradientsMatchAutogradOfTheClosedForm) {
  torch::manual_seed(8);
  CamNet net;
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  torch::Tensor xr = x.clone().requires_grad_(true);
  torch::conv2d(xr, net.K).select(1, 2).abs().sum().backward();
  const auto out = RunTechnique("layer-gradient", *net.model, x, 0, {{"layer", "conv"}, {"channel", 2}});
  EXPECT_TRUE(test::AllClose(out.artifacts[0].tensor, xr.grad(), 1e-12));
  // One neuron: its receptive field is the kernel placed at (1, 2).
  const auto neuron = RunTechnique("layer-gradient", *net.model, x, 0, {{"layer", "conv"}, {"channel", 3}, {"neuron", {1, 2}}});
  torch::Tensor want = torch::zeros_like(x);
  want[0].slice(1, 1, 4).slice(2, 2, 5) += net.K[3];
  EXPECT_TRUE(test::AllClose(neuron.artifacts[0].tensor, want, 1e-12));
  EXPECT_THROW(RunTechnique("layer-gradient", *net.model, x, 0, {{"layer", "conv"}, {"channel", 4}}), UsageError);
}

// Layer conductance with a linear head after the layer: dF/dA is the constant V[t, c] / (h w), so
// the sum over path steps telescopes to dF/dA * (A(p_n) - A(p_0)), and A is affine in x:
// A(p_k) = A(b) + a_k (A(x) - A(b)). Trapezoid nodes run from 0 to 1; Gauss-Legendre's do not.
// conv (2 -> 4 channels, 3x3, with bias) as module "conv" -> spatial mean -> fc (3 x 4), float64.
struct LinearHead {
  torch::Tensor K = torch::randn({4, 2, 3, 3}, torch::kFloat64), bias = torch::randn({4}, torch::kFloat64);
  torch::Tensor V = torch::randn({3, 4}, torch::kFloat64);
  std::shared_ptr<Model> model;
  LinearHead() {
    torch::jit::Module conv("Conv2d", test::SharedUnit(), true);
    conv.register_parameter("weight", K, false);
    conv.register_parameter("bias", bias, false);
    conv.define("def forward(self, x):\n    return torch.conv2d(x, self.weight, self.bias)\n");
    torch::jit::Module net("Net", test::SharedUnit(), true);
    net.register_module("conv", conv);
    net.register_parameter("v", V, false);
    net.define("def forward(self, x):\n    return torch.matmul(self.conv.forward(x).mean([2, 3]), self.v.t())\n");
    model = test::SaveAndLoad(net, 2, 6, 6);
  }
};

TEST(LayerConductance, OfALinearHeadTelescopesToTheLayersChange) {
  torch::manual_seed(11);
  LinearHead head;
  auto& model = head.model;
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const torch::Tensor change = torch::conv2d(x, head.K);  // A(x) - A(0)
  const torch::Tensor slope = (head.V[2] / 16).view({1, 4, 1, 1});
  for (const auto& [method, span] : std::vector<std::pair<std::string, double>>{{"riemann_trapezoid", 1.0}, {"gausslegendre", 0.0}}) {
    const auto out = RunTechnique("layer-conductance", *model, x, 2,
                                  {{"layer", "conv"}, {"method", method}, {"steps", 9}, {"batch_size", 4}});
    std::vector<double> alphas, weights;
    IntegrationRule(method, 10, alphas, weights);
    const double reach = span > 0 ? span : alphas.back() - alphas.front();
    ASSERT_EQ(out.artifacts.size(), 2u);
    const torch::Tensor units = out.artifacts[1].tensor;
    EXPECT_TRUE(torch::allclose(units, slope * change * reach, 1e-12, 1e-12)) << method;
    EXPECT_TRUE(torch::allclose(out.artifacts[0].tensor, units.sum(1, true), 1e-12, 1e-12));
    if (span > 0)  // the whole change flows through the layer: completeness holds exactly
      EXPECT_NEAR(out.metrics["completeness"]["delta"].get<double>(), 0, 1e-12);
  }
}

std::shared_ptr<Model> SharedSqueezeNet64() { return test::SharedSqueezeNet("float64"); }

// Captum's LayerConductance at SqueezeNet 1.0's features.12, 16 steps, zero baseline, float64,
// from tools/check_captum_layer_methods.py (Captum on the eager copy of the same weights).
TEST(LayerConductance, EqualsCaptumsOnSqueezeNet) {
  auto model = SharedSqueezeNet64();
  if (!model) GTEST_SKIP() << "no shared models at " << test::SharedModels();
  auto gen = at::detail::createCPUGenerator(5);
  const torch::Tensor x = torch::randn({1, 3, 224, 224}, gen, torch::kFloat64);
  const auto out = RunTechnique("layer-conductance", *model, x, 281, {{"layer", "features.12"}, {"steps", 16}});
  const torch::Tensor units = out.artifacts[1].tensor;
  ASSERT_EQ(units.sizes(), (std::vector<int64_t>{1, 512, 13, 13}));
  EXPECT_NEAR(units.sum().item<double>(), 1.5328268318539582, 1e-6);
  EXPECT_NEAR(units.abs().sum().item<double>(), 4.652725054525776, 1e-6);
  EXPECT_NEAR(units[0][445][1][12].item<double>(), 0.08017090901942046, 1e-6);
  EXPECT_NEAR(units[0][445][10][12].item<double>(), 0.0778852375318552, 1e-6);
  EXPECT_NEAR(units[0][122].sum().item<double>(), -0.789645137687452, 1e-6);
  EXPECT_NEAR(units[0][195].sum().item<double>(), 0.6020220632989404, 1e-6);
}

// Internal influence of a linear head: the layer gradient is V[t, c] / (h w) at every path point,
// and the rule's weights sum to 1, so the integral is that gradient, for every method.
TEST(InternalInfluence, OfALinearHeadIsTheConstantLayerGradient) {
  torch::manual_seed(12);
  LinearHead head;
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const torch::Tensor gradient = (head.V[1] / 16).view({1, 4, 1, 1}).expand({1, 4, 4, 4});
  for (const char* method : {"gausslegendre", "riemann_left", "riemann_trapezoid"}) {
    const auto out = RunTechnique("internal-influence", *head.model, x, 1,
                                  {{"layer", "conv"}, {"method", method}, {"steps", 7}, {"batch_size", 3}});
    ASSERT_EQ(out.artifacts.size(), 2u);
    EXPECT_TRUE(torch::allclose(out.artifacts[1].tensor, gradient, 1e-12, 1e-12)) << method;
    EXPECT_EQ(out.artifacts[0].kind, Artifact::Kind::kLayerMap);
  }
}

// Captum's InternalInfluence at SqueezeNet 1.0's features.12, 16 steps, zero baseline, float64
// (tools/check_captum_layer_methods.py).
TEST(InternalInfluence, EqualsCaptumsOnSqueezeNet) {
  auto model = SharedSqueezeNet64();
  if (!model) GTEST_SKIP() << "no shared models at " << test::SharedModels();
  auto gen = at::detail::createCPUGenerator(5);
  const torch::Tensor x = torch::randn({1, 3, 224, 224}, gen, torch::kFloat64);
  const auto out = RunTechnique("internal-influence", *model, x, 281, {{"layer", "features.12"}, {"steps", 16}});
  const torch::Tensor units = out.artifacts[1].tensor;
  EXPECT_NEAR(units.sum().item<double>(), -0.41514350556839363, 1e-9);
  EXPECT_NEAR(units.abs().sum().item<double>(), 1.5095845389550793, 1e-9);
  EXPECT_NEAR(units[0][180][0][11].item<double>(), -0.0011463651392194963, 1e-9);
  EXPECT_NEAR(units[0][180].sum().item<double>(), -0.08378676604171283, 1e-9);
  EXPECT_NEAR(units[0][144].sum().item<double>(), -0.06034499381273502, 1e-9);
}

// CamNet's unit A_n = conv(x)[k, i, j] is linear in x (its input gradient is K[k] placed at (i, j))
// and dF_t/dA_n = V[t, k] [A_n > 0] / 16 keeps its sign along the ray from zero: with a rule whose
// points are all > 0 and whose weights sum to 1, attr = x * V[t, k] [A_n(x) > 0] / 16 * K[k] at (i, j).
TEST(NeuronConductance, OfAConvUnitIsTheInputTimesItsWeightedKernel) {
  torch::manual_seed(21);
  CamNet net;
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const torch::Tensor a = net.A(x);
  int checked = 0;
  for (int64_t k = 0; k < 4; ++k) {
    const int64_t i = k % 4, j = (k * 3) % 4;
    const bool on = a[0][k][i][j].item<double>() > 0;
    torch::Tensor window = torch::zeros({1, 2, 6, 6}, torch::kFloat64);
    window[0].slice(1, i, i + 3).slice(2, j, j + 3).copy_(net.K[k]);
    const torch::Tensor expected = x * window * (on ? net.V[1][k].item<double>() / 16 : 0.0);
    for (const char* method : {"gausslegendre", "riemann_right"}) {
      const auto out = RunTechnique("neuron-conductance", *net.model, x, 1,
                                    {{"layer", "conv"}, {"channel", k}, {"neuron", {i, j}}, {"method", method},
                                     {"steps", 5}, {"batch_size", 2}});
      EXPECT_TRUE(test::AllClose(out.artifacts[0].tensor, expected, 1e-12)) << k << " " << method;
      EXPECT_NEAR(out.metrics["unit_conductance"].get<double>(), expected.sum().item<double>(), 1e-12);
    }
    checked += on;
  }
  EXPECT_GT(checked, 0) << "no unit was active: the test would only check zeros";
  // The default unit is the most active channel at its peak; a channel out of range is refused.
  const auto chosen = RunTechnique("neuron-conductance", *net.model, x, 1, {{"layer", "conv"}});
  const int64_t best = a[0].mean({1, 2}).argmax().item<int64_t>();
  EXPECT_EQ(chosen.metrics["unit"]["channel"], best);
  const int64_t peak = a[0][best].flatten().argmax().item<int64_t>();
  EXPECT_EQ(chosen.metrics["unit"]["position"], Json::array({peak / 4, peak % 4}));
  EXPECT_THROW(RunTechnique("neuron-conductance", *net.model, x, 1, {{"layer", "conv"}, {"channel", 4}}), UsageError);
  EXPECT_THROW(RunTechnique("neuron-conductance", *net.model, x, 1, {{"layer", "conv"}, {"neuron", {4, 0}}}), UsageError);
}

// Captum's NeuronConductance of SqueezeNet 1.0's unit features.12 (445, 1, 12), its default rule
// riemann_trapezoid, 16 steps, zero baseline, float64 (tools/check_captum_layer_methods.py).
// Captum's trapezoid weights are 1/n (halved ends), summing to 15/16 here; netlens' are the
// trapezoid rule's 1/(n-1): the same points, every weight 16/15 of Captum's.
TEST(NeuronConductance, EqualsCaptumsOnSqueezeNet) {
  auto model = SharedSqueezeNet64();
  if (!model) GTEST_SKIP() << "no shared models at " << test::SharedModels();
  auto gen = at::detail::createCPUGenerator(5);
  const torch::Tensor x = torch::randn({1, 3, 224, 224}, gen, torch::kFloat64);
  const auto out = RunTechnique("neuron-conductance", *model, x, 281,
                                {{"layer", "features.12"}, {"channel", 445}, {"neuron", {1, 12}}, {"steps", 16}});
  const torch::Tensor attr = out.artifacts[0].tensor * (15.0 / 16.0);
  EXPECT_NEAR(attr.sum().item<double>(), 0.07122250171774566, 1e-9);
  EXPECT_NEAR(attr.abs().sum().item<double>(), 2.7900130203247118, 1e-9);
  EXPECT_NEAR(attr[0][0][12][179].item<double>(), 0.00594879539136207, 1e-12);
  EXPECT_NEAR(attr[0][1][14][192].item<double>(), 0.004613679781684491, 1e-12);
  EXPECT_NEAR(attr[0][0][34][215].item<double>(), 0.004020443698178637, 1e-12);
}

// GradientSHAP of a linear model without noise: every draw gives (x - b_i) * w whatever its point,
// so the mean is (x - mean of the drawn baselines) * w, with the draws the manifest counts.
TEST(GradientShap, OfALinearModelIsInputMinusTheMeanDrawnBaselineTimesTheWeights) {
  torch::manual_seed(13);
  LinearModel lm(2, 5, 5, 3);
  const torch::Tensor x = torch::randn({1, 2, 5, 5}, torch::kFloat64);
  const auto out = RunTechnique("gradient-shap", *lm.model, x, 2,
                                {{"baselines", {"zero", "uniform"}}, {"samples", 37}, {"batch_size", 8}, {"seed", 4}});
  const Json& draws = out.metrics["baseline_draws"];
  ASSERT_EQ(draws["zero"].get<int64_t>() + draws["uniform"].get<int64_t>(), 37);
  EXPECT_GT(draws["zero"].get<int64_t>(), 0);
  EXPECT_GT(draws["uniform"].get<int64_t>(), 0);
  const torch::Tensor uniform = SeededUniform(x, 4);  // the model's mean 0 and std 1 leave it as is
  const torch::Tensor mean_baseline = uniform * (draws["uniform"].get<double>() / 37);
  const torch::Tensor expected = (x - mean_baseline) * lm.W[2].view({1, 2, 5, 5});
  EXPECT_TRUE(torch::allclose(out.artifacts[0].tensor, expected, 1e-12, 1e-12));
  EXPECT_NEAR(out.metrics["completeness"]["delta"].get<double>(), 0, 1e-10);
  // Noise moves the attribution, and the same seed gives the same draws.
  const auto noisy = RunTechnique("gradient-shap", *lm.model, x, 2, {{"baselines", {"zero", "uniform"}}, {"stdevs", 0.5}, {"samples", 8}, {"seed", 4}});
  const auto again = RunTechnique("gradient-shap", *lm.model, x, 2, {{"baselines", {"zero", "uniform"}}, {"stdevs", 0.5}, {"samples", 8}, {"seed", 4}});
  EXPECT_TRUE(torch::equal(noisy.artifacts[0].tensor, again.artifacts[0].tensor));
  const auto clean = RunTechnique("gradient-shap", *lm.model, x, 2,
                                  {{"baselines", {"zero", "uniform"}}, {"samples", 8}, {"seed", 4}});
  EXPECT_EQ(noisy.metrics["baseline_draws"], clean.metrics["baseline_draws"]);
  EXPECT_FALSE(torch::allclose(noisy.artifacts[0].tensor, clean.artifacts[0].tensor));
  EXPECT_THROW(RunTechnique("gradient-shap", *lm.model, x, 2, {{"baselines", {"zeros"}}}), UsageError);
}

// With one baseline and no noise, GradientSHAP is a Monte Carlo estimate of integrated gradients
// (the point on the segment uniform in [0, 1]): on a ReLU network it approaches IG's attribution
// as the samples grow, and its completeness holds in expectation.
TEST(GradientShap, WithOneBaselineApproachesIntegratedGradients) {
  torch::manual_seed(1);
  auto model = ReluMlp();
  const torch::Tensor x = torch::randn({1, 3, 4, 4}, torch::kFloat64);
  // A uniform-noise baseline: from zero, this bias-free ReLU net is linear along every ray and any
  // point on the path has IG's gradient, which would make the test trivially pass.
  const torch::Tensor ig =
      RunTechnique("integrated-gradients", *model, x, 1, {{"steps", 64}, {"baseline", "uniform"}, {"seed", 9}})
          .artifacts[0].tensor;
  double previous = 1e9;
  for (int64_t samples : {16, 4096}) {
    const auto out = RunTechnique("gradient-shap", *model, x, 1,
                                  {{"baselines", {"uniform"}}, {"samples", samples}, {"batch_size", 512}, {"seed", 9}});
    const double error = ((out.artifacts[0].tensor - ig).norm() / ig.norm()).item<double>();
    EXPECT_LT(error, previous) << samples;
    if (samples == 16) EXPECT_GT(error, 0.02) << "a few draws must differ from IG, or the test proves nothing";
    previous = error;
    if (samples == 4096) {
      EXPECT_LT(error, 0.05);
      EXPECT_LT(out.metrics["completeness"]["relative_delta"].get<double>(), 0.05) << out.metrics.dump();
    }
  }
}

}  // namespace
}  // namespace netlens
