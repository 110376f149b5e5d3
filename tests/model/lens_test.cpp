// The lens on small TorchScript models written in the test: layer paths, aliases, errors, capture
// after in-place ops, and the rectifier backward rules for every ReLU form.
#include "netlens/model/lens.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/runtime/operator.h>

#include <cmath>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"
#include "netlens/techniques/common.h"
#include "tests/test_util.h"

namespace netlens {
namespace {

torch::jit::Module ConvModule(const torch::Tensor& weight) {
  torch::jit::Module conv("Conv2d", test::SharedUnit(), true);
  conv.register_parameter("weight", weight, false);
  conv.define("def forward(self, x):\n    return torch.conv2d(x, self.weight)\n");
  return conv;
}

// x -> block.conv -> (in-place +1) -> relu_ -> mean -> fc
torch::jit::Module NestedModel() {
  torch::manual_seed(1);
  torch::jit::Module block("Block", test::SharedUnit(), true);
  block.register_module("conv", ConvModule(torch::randn({4, 2, 3, 3}, torch::kFloat64)));
  block.define(
      "def forward(self, x):\n"
      "    a = self.conv.forward(x)\n"
      "    a += 1.0\n"
      "    return torch.relu_(a)\n");
  torch::jit::Module fc("Linear", test::SharedUnit(), true);
  fc.register_parameter("weight", torch::randn({3, 4}, torch::kFloat64), false);
  fc.define("def forward(self, x):\n    return torch.matmul(x, self.weight.t())\n");
  torch::jit::Module net("Net", test::SharedUnit(), true);
  net.register_module("block", block);
  net.register_module("fc", fc);
  net.define("def forward(self, x):\n    return self.fc.forward(self.block.forward(x).mean([2, 3]))\n");
  return net;
}

TEST(Lens, ListsNestedModulePathsInForwardOrderWithShapes) {
  auto module = NestedModel();
  auto model = test::SaveAndLoad(module, 2, 6, 6);
  const auto& layers = model->lens().layers();
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0].path, "block");
  EXPECT_EQ(layers[1].path, "block.conv");
  EXPECT_EQ(layers[1].type, "Conv2d");
  EXPECT_EQ(layers[1].shape, (std::vector<int64_t>{1, 4, 4, 4}));
  EXPECT_EQ(layers[2].path, "fc");
  EXPECT_EQ(layers[2].shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(model->lens().RectifierCount(), 1);
}

TEST(Lens, ResolvesAliasesAndSuggestsNames) {
  auto module = NestedModel();
  auto model = test::SaveAndLoad(module, 2, 6, 6);
  EXPECT_EQ(model->lens().Resolve("conv-0"), "block.conv");
  EXPECT_EQ(model->lens().Resolve("last-conv"), "block.conv");
  EXPECT_THROW(model->lens().Resolve("conv-1"), UsageError);
  try {
    model->lens().Resolve("block.cnv");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean \"block.conv\""), std::string::npos) << e.what();
  }
}

TEST(Lens, CaptureIsTheLayerOutputBeforeLaterInPlaceOps) {
  auto module = NestedModel();
  auto model = test::SaveAndLoad(module, 2, 6, 6);
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const torch::Tensor w = module.attr("block").toModule().attr("conv").toModule().attr("weight").toTensor();
  torch::NoGradGuard no_grad;
  auto capture = model->lens().Forward(x, {"block.conv", "block"});
  const torch::Tensor conv = torch::conv2d(x, w);
  EXPECT_TRUE(test::AllClose(capture.activations[0], conv, 1e-12));
  EXPECT_TRUE(test::AllClose(capture.activations[1], torch::relu(conv + 1), 1e-12));
  EXPECT_TRUE(test::AllClose(capture.output, model->Logits(x), 1e-12));
}

// float32: conv1 -> batch norm -> relu_ -> residual block (conv2 -> batch norm -> += input ->
// relu_) -> two parallel convolutions, concatenated -> mean -> fc; returns (logits, unused(...)),
// so that the logits do not depend on `unused`.
torch::jit::Module SplittableModel() {
  torch::manual_seed(3);
  torch::jit::Module net("SplitNet", test::SharedUnit(), true);
  net.register_module("conv1", ConvModule(torch::randn({4, 2, 3, 3})));
  net.register_module("conv2", ConvModule(torch::randn({4, 4, 1, 1})));
  net.register_module("branch_a", ConvModule(torch::randn({3, 4, 1, 1})));
  net.register_module("branch_b", ConvModule(torch::randn({2, 4, 1, 1})));
  net.register_module("unused", ConvModule(torch::randn({1, 4, 1, 1})));
  for (const char* bn : {"bn1", "bn2"}) {
    net.register_buffer(std::string(bn) + "_mean", torch::randn({4}));
    net.register_buffer(std::string(bn) + "_var", torch::rand({4}) + 0.5);
    net.register_parameter(std::string(bn) + "_weight", torch::randn({4}), false);
    net.register_parameter(std::string(bn) + "_bias", torch::randn({4}), false);
  }
  net.register_parameter("fc_weight", torch::randn({3, 5}), false);
  net.define(
      "def forward(self, x):\n"
      "    h = torch.batch_norm(self.conv1.forward(x), self.bn1_weight, self.bn1_bias, self.bn1_mean,\n"
      "                         self.bn1_var, False, 0.1, 1e-5, False)\n"
      "    h = torch.relu_(h)\n"
      "    r = torch.batch_norm(self.conv2.forward(h), self.bn2_weight, self.bn2_bias, self.bn2_mean,\n"
      "                         self.bn2_var, False, 0.1, 1e-5, False)\n"
      "    r += h\n"
      "    r = torch.relu_(r)\n"
      "    u = self.unused.forward(r)\n"
      "    c = torch.cat([self.branch_a.forward(r), self.branch_b.forward(r)], 1)\n"
      "    return (torch.matmul(c.mean([2, 3]), self.fc_weight.t()), u)\n");
  return net;
}

// Gradients at layers only: once the lens runs what precedes the layers frozen and without
// autograd, the output, the activations and the gradients at them are the plain pass' to float32
// rounding, for a layer inside a residual block (the tail reads the block input), a layer
// downstream of another, two parallel layers, and a layer the logits do not depend on (which
// keeps the plain pass).
TEST(Lens, LayerGradientsFromAFrozenPrefixEqualThePlainPass) {
  auto module = SplittableModel();
  auto model = test::SaveAndLoad(module, 2, 8, 8, "float32");
  const torch::Tensor x = torch::randn({2, 2, 8, 8});
  const auto gradients = [&](const Lens::Capture& c) {
    return torch::autograd::grad({c.output.select(1, 2).sum()}, c.activations, {}, false, false, true);
  };
  const std::vector<std::vector<std::string>> requests = {
      {"unused"}, {"conv2"}, {"branch_a", "conv1"}, {"branch_a", "branch_b"}};
  for (const auto& layers : requests) {
    SCOPED_TRACE(Join(layers, ","));
    model->lens().SetFreezePrefixes(false);
    const auto plain = model->lens().ForwardForLayerGradients(x, layers);
    model->lens().SetFreezePrefixes(true);
    const auto split = model->lens().ForwardForLayerGradients(x, layers);
    const bool splittable = layers[0] != "unused";
    // The split pass returns each most upstream layer output as a leaf of the autograd graph.
    EXPECT_EQ(split.activations.back().is_leaf(), splittable);
    EXPECT_FALSE(x.requires_grad());
    EXPECT_TRUE(test::AllClose(split.output, plain.output, 1e-5, 1e-5));
    const auto g_plain = gradients(plain), g_split = gradients(split);
    for (size_t i = 0; i < layers.size(); ++i) {
      EXPECT_TRUE(test::AllClose(split.activations[i], plain.activations[i], 1e-5, 1e-5)) << layers[i];
      if (!splittable) continue;
      ASSERT_TRUE(g_split[i].defined()) << layers[i];
      EXPECT_GT(g_split[i].abs().max().item<double>(), 0) << layers[i];
      EXPECT_TRUE(test::AllClose(g_split[i], g_plain[i], 1e-5, 1e-5)) << layers[i];
    }
  }
}

// The frozen prefix holds the weights as constants: after a change of parameters in place
// (sanity checks re-draw them), ParametersChanged drops it and the next pass sees the new weights.
TEST(Lens, FrozenPrefixFollowsChangedParameters) {
  auto module = SplittableModel();
  auto model = test::SaveAndLoad(module, 2, 8, 8, "float32");
  model->SetManyPasses(true);
  const torch::Tensor x = torch::randn({1, 2, 8, 8});
  const auto before = model->lens().ForwardForLayerGradients(x, {"conv2"});
  ASSERT_TRUE(before.activations[0].is_leaf());
  {
    torch::NoGradGuard no_grad;
    model->module().attr("conv1").toModule().attr("weight").toTensor().mul_(-2);
  }
  model->ParametersChanged();
  const auto after = model->lens().ForwardForLayerGradients(x, {"conv2"});
  model->lens().SetFreezePrefixes(false);
  const auto plain = model->lens().ForwardForLayerGradients(x, {"conv2"});
  EXPECT_FALSE(test::AllClose(after.activations[0], before.activations[0], 1e-3));
  EXPECT_TRUE(test::AllClose(after.activations[0], plain.activations[0], 1e-5, 1e-5));
  EXPECT_TRUE(test::AllClose(after.output, plain.output, 1e-5, 1e-5));
}

// f_t = sum_i W[t, i] * act(x)_i for the ReLU form in `body`; the gradient under each rule is
// known elementwise.
struct RuleCase {
  const char* name;
  const char* body;
  double hi;  // upper clamp (6 for ReLU6)
};

class RectifierRules : public ::testing::TestWithParam<RuleCase> {};

TEST_P(RectifierRules, MatchesTheRuleElementwise) {
  const RuleCase rc = GetParam();
  torch::manual_seed(3);
  const torch::Tensor W = torch::randn({2, 2 * 4 * 4}, torch::kFloat64);
  torch::jit::Module act("Act", test::SharedUnit(), true);
  act.define(std::string("def forward(self, x):\n") + rc.body);
  torch::jit::Module net("Net", test::SharedUnit(), true);
  net.register_module("act", act);
  net.register_parameter("weight", W, false);
  net.define("def forward(self, x):\n    return torch.matmul(torch.flatten(self.act.forward(x), 1), self.weight.t())\n");
  auto model = test::SaveAndLoad(net, 2, 4, 4);
  EXPECT_EQ(model->lens().RectifierCount(), 1) << rc.name;

  const torch::Tensor x = torch::rand({1, 2, 4, 4}, torch::kFloat64) * 16 - 8;  // some above 6
  const torch::Tensor w = W[1].view({1, 2, 4, 4});
  const torch::Tensor pass = ((x > 0) & (x < rc.hi)).to(torch::kFloat64);
  const auto vanilla = TargetGradients(*model, x, 1, {}, BackwardRule::kVanilla).input_grad;
  const auto guided = TargetGradients(*model, x, 1, {}, BackwardRule::kGuided).input_grad;
  const auto deconv = TargetGradients(*model, x, 1, {}, BackwardRule::kDeconvnet).input_grad;
  EXPECT_TRUE(test::AllClose(vanilla, w * pass, 0)) << rc.name;
  EXPECT_TRUE(test::AllClose(guided, w * pass * (w > 0).to(torch::kFloat64), 0)) << rc.name;
  EXPECT_TRUE(test::AllClose(deconv, w.clamp_min(0), 0)) << rc.name;
  EXPECT_FALSE(test::AllClose(vanilla, guided, 1e-9)) << rc.name;
}

INSTANTIATE_TEST_SUITE_P(
    AllForms, RectifierRules,
    ::testing::Values(
        RuleCase{"functional", "    return torch.relu(x)\n", 1e300},
        RuleCase{"inplace", "    y = x.clone()\n    torch.relu_(y)\n    return y\n", 1e300},
        RuleCase{"hardtanh_relu6", "    return torch.hardtanh(x, 0.0, 6.0)\n", 6.0},
        RuleCase{"hardtanh_inplace", "    y = x.clone()\n    return torch.hardtanh_(y, 0.0, 6.0)\n", 6.0}),
    [](const auto& info) { return std::string(info.param.name); });

// Self-attention as one fused scaled_dot_product_attention (LibTorch 2.x's op; 1.13's private
// form where 2.x's is missing): 4 x 4 positions of 4 channels as 16 tokens, 2 heads of 2.
torch::jit::Module FusedAttentionModel(bool causal) {
  torch::manual_seed(3);
  torch::jit::Module net("Net", test::SharedUnit(), true);
  for (const char* w : {"wq", "wk", "wv"}) net.register_parameter(w, torch::randn({4, 4}, torch::kFloat64), false);
  net.register_parameter("fc", torch::randn({3, 4}, torch::kFloat64), false);
  const bool modern = !torch::jit::getAllOperatorsFor(c10::Symbol::fromQualString("aten::scaled_dot_product_attention")).empty();
  const std::string flag = causal ? "True" : "False";
  const std::string call = modern ? "torch.scaled_dot_product_attention(q, k, v, None, 0.0, " + flag + ")"
                                  : "torch._scaled_dot_product_attention(q, k, v, None, 0.0, False, " + flag + ")[0]";
  net.define(
      "def forward(self, x):\n"
      "    t = x.flatten(2).transpose(1, 2)\n"
      "    q = torch.matmul(t, self.wq.t()).view(1, 16, 2, 2).transpose(1, 2)\n"
      "    k = torch.matmul(t, self.wk.t()).view(1, 16, 2, 2).transpose(1, 2)\n"
      "    v = torch.matmul(t, self.wv.t()).view(1, 16, 2, 2).transpose(1, 2)\n"
      "    o = " + call + "\n"
      "    return torch.matmul(o.transpose(1, 2).reshape(1, 16, 4).mean(1), self.fc.t())\n");
  return net;
}

// The lens writes a fused attention out to tap it: the tapped attention is softmax(q kᵀ / √2)
// (masked above the diagonal when causal), and the output and the input gradient equal the fused
// op's to 1e-12.
TEST(Lens, FusedScaledDotProductAttentionIsWrittenOutAndTapped) {
  for (const bool causal : {false, true}) {
    auto module = FusedAttentionModel(causal);
    auto model = test::SaveAndLoad(module, 4, 4, 4);
    const torch::Tensor x = torch::randn({1, 4, 4, 4}, torch::kFloat64);
    const torch::Tensor xa = x.clone().requires_grad_(true);
    const Lens::Attention a = model->lens().ForwardAttention(xa);
    ASSERT_EQ(a.maps.size(), 1u) << "causal " << causal;
    const torch::Tensor t = x.flatten(2).transpose(1, 2);
    const auto heads = [&](const char* w) {
      return torch::matmul(t, module.attr(w).toTensor().t()).view({1, 16, 2, 2}).transpose(1, 2);
    };
    torch::Tensor scores = torch::matmul(heads("wq"), heads("wk").transpose(-2, -1)) / std::sqrt(2.0);
    if (causal) scores = scores.masked_fill(torch::ones({16, 16}, torch::kBool).tril().logical_not(), -INFINITY);
    EXPECT_TRUE(test::AllClose(a.maps[0], torch::softmax(scores, -1), 1e-12, 1e-12)) << "causal " << causal;
    const torch::Tensor xb = x.clone().requires_grad_(true);
    const torch::Tensor plain = module.forward({xb}).toTensor();
    EXPECT_TRUE(test::AllClose(a.output, plain, 1e-12, 1e-12)) << "causal " << causal;
    const torch::Tensor ga = torch::autograd::grad({a.output.select(1, 1).sum()}, {xa})[0];
    const torch::Tensor gb = torch::autograd::grad({plain.select(1, 1).sum()}, {xb})[0];
    EXPECT_TRUE(test::AllClose(ga, gb, 1e-12, 1e-12)) << "causal " << causal;
  }
}

}  // namespace
}  // namespace netlens
