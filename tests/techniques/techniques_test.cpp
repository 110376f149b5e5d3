// Exact oracles for the gradient-family techniques, run through the registry as the CLI runs them.
#include <gtest/gtest.h>

#include "netlens/core/errors.h"
#include "netlens/image/render.h"
#include "netlens/runner/common_options.h"
#include "netlens/runner/runner.h"
#include "netlens/techniques/registry.h"
#include "tests/techniques/fixtures.h"

namespace netlens {
namespace {

using test::CamNet;
using test::LinearModel;

std::vector<Artifact> RunTechnique(const std::string& name, Model& model, const torch::Tensor& x,
                                   int64_t target, Json options = Json::object()) {
  return test::RunTechnique(name, model, x, target, std::move(options)).artifacts;
}

TEST(Saliency, LinearModelGradientIsItsWeightRow) {
  torch::manual_seed(0);
  LinearModel lm(2, 3, 3, 5);
  const torch::Tensor x = torch::randn({1, 2, 3, 3}, torch::kFloat64);
  for (int64_t t : {0, 3}) {
    const auto out = RunTechnique("saliency", *lm.model, x, t);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(test::AllClose(out[0].tensor, lm.W[t].view({1, 2, 3, 3}), 1e-12));
    const auto ixg = RunTechnique("input-x-gradient", *lm.model, x, t);
    EXPECT_TRUE(test::AllClose(ixg[0].tensor, x * lm.W[t].view({1, 2, 3, 3}), 1e-12));
  }
}

TEST(Saliency, NoReluMeansGuidedEqualsVanilla) {
  torch::manual_seed(0);
  LinearModel lm(2, 3, 3, 5);
  const torch::Tensor x = torch::randn({1, 2, 3, 3}, torch::kFloat64);
  EXPECT_TRUE(test::AllClose(RunTechnique("guided", *lm.model, x, 2)[0].tensor, lm.W[2].view({1, 2, 3, 3}), 1e-12));
}

TEST(Saliency, TargetOutOfRangeIsAUsageError) {
  torch::manual_seed(0);
  LinearModel lm(2, 3, 3, 5);
  EXPECT_THROW(RunTechnique("saliency", *lm.model, torch::zeros({1, 2, 3, 3}, torch::kFloat64), 5),
               UsageError);
}

TEST(GradCam, TwoLayerConvNetMatchesHandComputation) {
  torch::manual_seed(4);
  CamNet net;
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  for (int64_t t : {0, 2}) {
    const auto out = RunTechnique("gradcam", *net.model, x, t, {{"layer", "conv"}});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].layer, "conv");
    EXPECT_EQ(out[0].kind, Artifact::Kind::kLayerMap);
    EXPECT_TRUE(test::AllClose(out[0].tensor, net.HandCam(x, t), 1e-12));
  }
}

TEST(GradCam, SeveralLayersInOneRequest) {
  torch::manual_seed(4);
  CamNet net;
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const auto out = RunTechnique("gradcam", *net.model, x, 1, {{"layer", {"conv", "last-conv"}}});
  ASSERT_EQ(out.size(), 3u);  // one map per layer plus their fusion
  EXPECT_TRUE(test::AllClose(out[0].tensor, out[1].tensor, 0));
  EXPECT_EQ(out[2].layer, "fused");
  // Fusing two equal maps gives that map, ReLU'd, upsampled to 6x6 and min-max scaled.
  torch::Tensor up = ResizeMap(out[0].tensor[0][0].clamp_min(0), 6, 6, /*nearest=*/false);
  up = up - up.min();
  EXPECT_TRUE(test::AllClose(out[2].tensor[0][0], up / (1e-7 + up.max()), 1e-12));
  EXPECT_THROW(RunTechnique("gradcam", *net.model, x, 1, {{"layer", "conv9"}}), UsageError);
}

TEST(GuidedGradCam, IsGuidedBackpropTimesNearestUpsampledReluCam) {
  torch::manual_seed(5);
  CamNet net;
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const auto out = RunTechnique("guided-gradcam", *net.model, x, 0, {{"layer", "conv"}});
  ASSERT_EQ(out.size(), 2u);
  const torch::Tensor guided = RunTechnique("guided", *net.model, x, 0)[0].tensor;
  const torch::Tensor up = ResizeMap(net.HandCam(x, 0)[0][0].clamp_min(0), 6, 6, /*nearest=*/true);
  EXPECT_TRUE(test::AllClose(out[0].tensor, guided * up.view({1, 1, 6, 6}), 1e-12));
}

TEST(Registry, UnknownTechniqueSuggestsTheClosest) {
  try {
    FindTechnique("gradcm");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean \"gradcam\""), std::string::npos);
  }
}

TEST(Targets, IndexLabelPrefixAndTopK) {
  torch::manual_seed(0);
  LinearModel lm(2, 3, 3, 5);
  const torch::Tensor logits = torch::tensor({{0.1, 3.0, -1.0, 2.0, 0.0}}, torch::kFloat64);
  EXPECT_EQ(ResolveTargets({}, *lm.model, logits), std::vector<int64_t>{1});
  EXPECT_EQ(ResolveTargets({"top2"}, *lm.model, logits), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(ResolveTargets({"4", "0"}, *lm.model, logits), (std::vector<int64_t>{4, 0}));
  EXPECT_THROW(ResolveTargets({"5"}, *lm.model, logits), UsageError);
  EXPECT_THROW(ResolveTargets({"cat"}, *lm.model, logits), UsageError);  // no labels
}

}  // namespace
}  // namespace netlens
