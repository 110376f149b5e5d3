// The guided and deconvnet rules on models whose activations are not all ReLUs: the manifest
// counts what the rule replaced and what it left, and a model without any rectifier gets a
// warning and a map equal to the vanilla gradient (issue 12's first finding).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <functional>

#include "netlens/model/graph.h"
#include "tests/techniques/fixtures.h"

namespace netlens {
namespace {

// conv (2 -> 4 channels, 3x3) -> ACTIVATION -> spatial mean -> fc (3 x 4), float64.
std::shared_ptr<Model> ActivatedNet(const std::string& activation) {
  torch::manual_seed(3);
  torch::jit::Module net("Net", test::SharedUnit(), true);
  net.register_parameter("k", torch::randn({4, 2, 3, 3}, torch::kFloat64), false);
  net.register_parameter("v", torch::randn({3, 4}, torch::kFloat64), false);
  net.define("def forward(self, x):\n    a = torch.conv2d(x, self.k)\n    a = " + activation +
             "\n    return torch.matmul(a.mean([2, 3]), self.v.t())\n");
  return test::SaveAndLoad(net, 2, 6, 6);
}

TEST(Activations, CensusCountsRectifiersAndTheActivationsTheRulesLeave) {
  auto mixed = ActivatedNet("torch.hardswish(torch.relu_(a)) + torch.silu(a) * "
                            "torch.gelu(torch.relu6(a))");
  const ActivationCensus census = CountActivations(*InlinedForward(mixed->module()));
  EXPECT_EQ(census.rectifiers, (std::map<std::string, int64_t>{{"relu", 1}, {"relu6", 1}}));
  EXPECT_EQ(census.others, (std::map<std::string, int64_t>{{"gelu", 1}, {"hardswish", 1}, {"silu", 1}}));
  EXPECT_EQ(census.Rectifiers(), mixed->lens().RectifierCount());
  const auto out = test::RunTechnique("guided", *mixed, torch::rand({1, 2, 6, 6}, torch::kFloat64), 0);
  EXPECT_EQ(out.metrics["activations"]["rewritten"], 2);
  EXPECT_EQ(out.metrics["activations"]["left"], 3);
  EXPECT_EQ(out.metrics["activations"]["left_kinds"]["silu"], 1);
}

TEST(Activations, WithoutRectifiersGuidedAndDeconvnetSayTheyEqualTheVanillaGradient) {
  auto silu = ActivatedNet("torch.silu(a)");
  const torch::Tensor x = torch::rand({1, 2, 6, 6}, torch::kFloat64);
  const auto vanilla = test::RunTechnique("saliency", *silu, x, 1);
  for (const char* rule : {"guided", "deconvnet"}) {
    testing::internal::CaptureStderr();
    const auto out = test::RunTechnique(rule, *silu, x, 1);
    const std::string log = testing::internal::GetCapturedStderr();
    EXPECT_EQ(out.metrics["activations"]["rule"], rule);
    EXPECT_EQ(out.metrics["activations"]["rewritten"], 0);
    EXPECT_EQ(out.metrics["activations"]["left_kinds"], Json({{"silu", 1}}));
    EXPECT_TRUE(torch::equal(out.artifacts[0].tensor, vanilla.artifacts[0].tensor)) << rule;
    EXPECT_NE(log.find("no ReLU-like activation to rewrite (it has silu 1)"), std::string::npos) << log;
    EXPECT_NE(log.find("equals the vanilla gradient"), std::string::npos) << log;
  }
  // A ReLU network: everything rewritten, nothing left, no warning.
  auto relu = ActivatedNet("torch.relu(a)");
  const auto out = test::RunTechnique("guided", *relu, x, 1);
  EXPECT_EQ(out.metrics["activations"]["rewritten"], 1);
  EXPECT_EQ(out.metrics["activations"]["left"], 0);
  EXPECT_FALSE(torch::equal(out.artifacts[0].tensor, vanilla.artifacts[0].tensor));
}

// --smooth-activations: on a conv -> f -> mean -> fc net the guided map is conv^T(f'(a) * relu(g))
// and the deconvnet map conv^T(relu(g)), g the gradient arriving at f's output, for every smooth
// activation form, in place or not; the vanilla gradient and the logits stay as they were.
TEST(Activations, SmoothRulesFollowTheirDefinitions) {
  using Fn = std::function<torch::Tensor(const torch::Tensor&)>;
  const std::vector<std::pair<std::string, Fn>> cases{
      {"torch.silu(a)", [](const torch::Tensor& a) { return torch::silu(a); }},
      {"torch.gelu(a)", [](const torch::Tensor& a) { return torch::gelu(a); }},
      {"torch.hardswish(a)", [](const torch::Tensor& a) { return torch::hardswish(a); }},
      {"torch.elu(a)", [](const torch::Tensor& a) { return torch::elu(a); }},
      {"torch.leaky_relu(a, 0.1)", [](const torch::Tensor& a) { return torch::leaky_relu(a, 0.1); }},
      {"torch.mish(a)", [](const torch::Tensor& a) { return torch::mish(a); }},
      {"torch.selu_(a)", [](const torch::Tensor& a) { return torch::selu(a); }},
  };
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, at::detail::createCPUGenerator(5), torch::kFloat64);
  const int64_t target = 1;
  for (const auto& [activation, f] : cases) {
    auto model = ActivatedNet(activation);
    const auto plain_logits = model->Logits(x);
    const auto vanilla = test::RunTechnique("saliency", *model, x, target);
    model->lens().SetSmoothActivationRules(true);
    // Eager: a = conv(x, k); the gradient reaching f's output is v[t] / (4 * 4) at every position.
    const torch::Tensor k = model->module().attr("k").toTensor(), v = model->module().attr("v").toTensor();
    const torch::Tensor xg = x.clone().requires_grad_(true);
    const torch::Tensor a = torch::conv2d(xg, k);
    const torch::Tensor g = (v[target] / 16.0).view({1, 4, 1, 1}).expand_as(a).contiguous();
    const torch::Tensor ad = a.detach().requires_grad_(true);
    const torch::Tensor local = torch::autograd::grad({f(ad)}, {ad}, {g.clamp_min(0)})[0];  // f'(a) relu(g)
    const torch::Tensor guided = torch::autograd::grad({a}, {xg}, {local}, true)[0];
    const torch::Tensor deconv = torch::autograd::grad({a}, {xg}, {g.clamp_min(0)})[0];
    testing::internal::CaptureStderr();
    const auto out_guided = test::RunTechnique("guided", *model, x, target);
    const std::string log = testing::internal::GetCapturedStderr();
    const auto out_deconv = test::RunTechnique("deconvnet", *model, x, target);
    EXPECT_TRUE(test::AllClose(out_guided.artifacts[0].tensor.view_as(guided), guided, 1e-12)) << activation;
    EXPECT_TRUE(test::AllClose(out_deconv.artifacts[0].tensor.view_as(deconv), deconv, 1e-12)) << activation;
    EXPECT_FALSE(torch::allclose(out_guided.artifacts[0].tensor, vanilla.artifacts[0].tensor)) << activation;
    EXPECT_EQ(out_guided.metrics["activations"]["generalized"], 1) << activation;
    EXPECT_EQ(out_guided.metrics["activations"]["rewritten"], 0) << activation;  // no rectifier in this net
    EXPECT_EQ(out_guided.metrics["activations"]["left"], 0) << activation;
    EXPECT_NE(log.find("netlens' generalization"), std::string::npos) << log;
    // Saliency and the logits do not change.
    EXPECT_TRUE(torch::equal(test::RunTechnique("saliency", *model, x, target).artifacts[0].tensor,
                             vanilla.artifacts[0].tensor)) << activation;
    EXPECT_TRUE(torch::allclose(model->Logits(x), plain_logits, 0, 1e-14)) << activation;
  }
}

// In place, with a later reader of the overwritten input: the rewrite keeps what the model
// computes.
TEST(Activations, SmoothRulesKeepInPlaceSemantics) {
  auto model = ActivatedNet("torch.celu_(a) + 0.5 * a");
  const torch::Tensor x = torch::randn({2, 2, 6, 6}, at::detail::createCPUGenerator(6), torch::kFloat64);
  const auto plain = model->lens().Forward(x, {}, BackwardRule::kVanilla).output;
  model->lens().SetSmoothActivationRules(true);
  const auto rewritten = model->lens().Forward(x, {}, BackwardRule::kGuided).output;
  EXPECT_TRUE(torch::allclose(rewritten, plain, 0, 1e-14));
  const auto out = test::RunTechnique("guided", *model, x.narrow(0, 0, 1), 0);
  EXPECT_EQ(out.metrics["activations"]["generalized_kinds"], Json({{"celu", 1}}));
}

}  // namespace
}  // namespace netlens
