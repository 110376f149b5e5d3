// The guided and deconvnet rules on models whose activations are not all ReLUs: the manifest
// counts what the rule replaced and what it left, and a model without any rectifier gets a
// warning and a map equal to the vanilla gradient (issue 12's first finding).
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace netlens
