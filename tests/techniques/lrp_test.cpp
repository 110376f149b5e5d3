// Oracles for lrp: every rule of one linear layer against its definition (model/lrp.h), LRP-0 of a
// bias-free ReLU network with max-pooling and a residual sum = gradient x input, Captum's LRP on
// SqueezeNet 1.0 to float64 precision, composites and their errors.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "netlens/core/errors.h"
#include "tests/techniques/fixtures.h"

namespace netlens {
namespace {

using test::RunTechnique;

torch::Tensor Stab(const torch::Tensor& z, double eps) { return torch::where(z >= 0, z + eps, z - eps); }

TEST(Lrp, RulesOfOneLinearLayerFollowTheirDefinitions) {
  torch::manual_seed(41);
  test::LinearModel net(3, 3, 3, 4);  // 3 x 3 x 3 inputs, ImageNet normalization, 4 classes
  const torch::Tensor x = torch::randn({1, 3, 3, 3}, torch::kFloat64);
  const double eps = 1e-9;
  bool positive_seen = false, negative_seen = false;
  for (int64_t t = 0; t < 4; ++t) {
    const torch::Tensor xf = x.flatten(), w = net.W[t], wp = w.clamp_min(0), wn = w.clamp_max(0);
    const torch::Tensor xp = xf.clamp_min(0), xn = xf.clamp_max(0);
    const torch::Tensor b = net.b[t], bp = b.clamp_min(0), bn = b.clamp_max(0);
    const torch::Tensor f = xf.dot(w) + b;  // the logit, the relevance to distribute
    const auto relevance = [&](Json options) {
      const auto out = RunTechnique("lrp", *net.model, x, t, std::move(options));
      const Json& c = out.metrics["conservation"];
      EXPECT_NEAR(c["output"].get<double>(), f.item<double>(), 1e-12);
      EXPECT_LT(c["relative_delta"].get<double>(), 1e-12) << c.dump();
      return out.artifacts[0].tensor.flatten();
    };
    EXPECT_TRUE(test::AllClose(relevance(Json::object()), xf * w * f / Stab(f, eps), 1e-12));
    EXPECT_TRUE(test::AllClose(relevance({{"bias", "zero"}}), xf * w * f / Stab(xf.dot(w), eps), 1e-12));
    // Generalized gamma: the output's sign picks W + gamma W+ (positive) or W + gamma W- (negative)
    // for the positive inputs, the other for the negative ones.
    const torch::Tensor wgp = w + 0.5 * wp, wgn = w + 0.5 * wn;
    const bool up = f.item<double>() > 0;
    const torch::Tensor w1 = up ? wgp : wgn, w2 = up ? wgn : wgp, b1 = b + 0.5 * (up ? bp : bn);
    const torch::Tensor zg = xp.dot(w1) + xn.dot(w2) + b1;
    EXPECT_TRUE(test::AllClose(relevance({{"layer_rules", {"linear=gamma"}}, {"gamma", 0.5}}),
                               (xp * w1 + xn * w2) * f / Stab(zg, eps), 1e-12));
    const torch::Tensor zp = xp.dot(wp) + xn.dot(wn) + bp, zn = xp.dot(wn) + xn.dot(wp) + bn;
    const torch::Tensor positive = (xp * wp + xn * wn) * f / Stab(zp, eps), negative = (xp * wn + xn * wp) * f / Stab(zn, eps);
    EXPECT_TRUE(test::AllClose(relevance({{"layer_rules", {"linear=zplus"}}}), positive, 1e-12));
    EXPECT_TRUE(test::AllClose(relevance({{"layer_rules", {"linear=alpha-beta"}}, {"alpha", 3}, {"beta", 2}}),
                               3 * positive - 2 * negative, 1e-12));
    EXPECT_TRUE(test::AllClose(relevance({{"layer_rules", {"linear=flat"}}}), torch::ones_like(xf) * f / Stab(torch::full({}, 27.0, torch::kFloat64), eps), 1e-12));
    const torch::Tensor wsq = w * w;
    EXPECT_TRUE(test::AllClose(relevance({{"layer_rules", {"first=wsquare"}}}), wsq * f / Stab(wsq.sum() + b * b, eps), 1e-12));
    // zbox: the bounds of the normalized input, pixels in [0, 1] through the model's mean and std.
    const auto& m = net.model->meta();
    torch::Tensor low = torch::empty({3, 9}, torch::kFloat64), high = torch::empty({3, 9}, torch::kFloat64);
    for (int64_t c = 0; c < 3; ++c) {
      low[c].fill_(-m.mean[c] / m.std[c]);
      high[c].fill_((1 - m.mean[c]) / m.std[c]);
    }
    low = low.flatten();
    high = high.flatten();
    const torch::Tensor zb = xf.dot(w) + b - (low.dot(wp) + bp) - (high.dot(wn) + bn);
    EXPECT_TRUE(test::AllClose(relevance({{"composite", "epsilon-gamma-box"}}),
                               (xf * w - low * wp - high * wn) * f / Stab(zb, eps), 1e-12, 1e-9));
    (up ? positive_seen : negative_seen) = true;
  }
  EXPECT_TRUE(positive_seen && negative_seen);  // both branches of the generalized gamma rule
}

// A LayerNorm under CP-LRP's rule (model/lrp.h): with its standard deviation s held constant,
// the relevance R_y at y = LN(x) goes to x as x * ((q - mean q) / s), q = R_y * w / stab(y) (stab(y
// - b) with --bias zero, which then conserves relevance to float64 rounding).
TEST(Lrp, LayerNormHoldsItsStandardDeviationConstant) {
  torch::manual_seed(43);
  torch::jit::Module net("Net", test::SharedUnit(), true);
  net.register_parameter("w", torch::randn({4}, torch::kFloat64), false);
  net.register_parameter("b", torch::randn({4}, torch::kFloat64), false);
  net.register_parameter("wl", torch::randn({2, 12}, torch::kFloat64), false);
  net.define(
      "def forward(self, x):\n"
      "    y = torch.layer_norm(x, [4], self.w, self.b, 1e-5)\n"
      "    return torch.linear(y.flatten(1), self.wl)\n");
  auto model = test::SaveAndLoad(net, 1, 3, 4);
  const torch::Tensor x = torch::randn({1, 1, 3, 4}, torch::kFloat64);
  const torch::Tensor w = net.attr("w").toTensor(), b = net.attr("b").toTensor(), wl = net.attr("wl").toTensor();
  const torch::Tensor y = torch::layer_norm(x, {4}, w, b, 1e-5);
  const torch::Tensor s = (x.var(-1, /*unbiased=*/false, /*keepdim=*/true) + 1e-5).sqrt();
  for (const bool zero : {false, true}) {
    const torch::Tensor f = y.flatten().dot(wl[1]);
    const torch::Tensor r_y = (y.flatten() * wl[1] * f / Stab(f, 1e-9)).view_as(y);
    const torch::Tensor q = r_y * w / Stab(zero ? y - b : y, 1e-9);
    const torch::Tensor expected = x * ((q - q.mean(-1, true)) / s);
    const auto out = RunTechnique("lrp", *model, x, 1, zero ? Json{{"bias", "zero"}} : Json::object());
    EXPECT_TRUE(test::AllClose(out.artifacts[0].tensor, expected, 1e-12, 1e-12)) << "bias zero " << zero;
    EXPECT_EQ(out.metrics["lrp"]["normalized"]["layer_norm (std held constant)"], 1);
    EXPECT_TRUE(out.metrics["lrp"]["ordinary_gradient"].empty()) << out.metrics["lrp"].dump();
    if (zero) EXPECT_LT(out.metrics["conservation"]["relative_delta"].get<double>(), 1e-9) << out.metrics.dump();
  }
}

// conv -> conv (one convolution reading another's output directly) -> relu -> max_pool2d(3, 2,
// ceil) -> conv, plus the pooled input (an in-place residual sum) -> relu -> mean -> linear, no
// biases: LRP-0 is exactly the gradient times the input.
TEST(Lrp, ZeroRuleOfABiasFreeReluNetworkIsGradientTimesInput) {
  torch::manual_seed(42);
  torch::jit::Module net("LrpResidual", test::SharedUnit(), true);
  net.register_parameter("k0", torch::randn({3, 3, 1, 1}, torch::kFloat64), false);
  net.register_parameter("k1", torch::randn({6, 3, 3, 3}, torch::kFloat64), false);
  net.register_parameter("k2", torch::randn({6, 6, 3, 3}, torch::kFloat64), false);
  net.register_parameter("v", torch::randn({4, 6}, torch::kFloat64), false);
  net.define(
      "def forward(self, x):\n"
      "    a = torch.relu(torch.conv2d(torch.conv2d(x, self.k0), self.k1, None, [1, 1], [1, 1]))\n"
      "    p = torch.max_pool2d(a, [3, 3], [2, 2], [0, 0], [1, 1], True)\n"
      "    h = torch.conv2d(p, self.k2, None, [1, 1], [1, 1])\n"
      "    h += p\n"
      "    h = torch.relu(h)\n"
      "    return torch.linear(h.mean([2, 3]), self.v)\n");
  auto model = test::SaveAndLoad(net, 3, 9, 9);
  for (int64_t t = 0; t < 3; ++t) {
    const torch::Tensor x = torch::randn({1, 3, 9, 9}, torch::kFloat64);
    const auto lrp = RunTechnique("lrp", *model, x, t, {{"epsilon", 0.0}});
    const auto gxi = RunTechnique("input-x-gradient", *model, x, t);
    EXPECT_TRUE(test::AllClose(lrp.artifacts[0].tensor, gxi.artifacts[0].tensor, 1e-12)) << t;
    EXPECT_EQ(lrp.metrics["lrp"]["normalized"]["add"], 1);
    EXPECT_EQ(lrp.metrics["lrp"]["normalized"]["max_pool2d"], 1);
    EXPECT_LT(std::abs(lrp.metrics["conservation"]["absorbed"].get<double>()), 1e-12);
    // Not the plain gradient: a test of the residual rule would otherwise prove nothing.
    const auto zplus = RunTechnique("lrp", *model, x, t, {{"composite", "epsilon-plus"}});
    EXPECT_GT((zplus.artifacts[0].tensor - gxi.artifacts[0].tensor).abs().max().item<double>(), 1e-3);
  }
}

// Upsampling, no biases: bilinear upsampling takes the norm rule (x * J^T (R / y), the z-rule of a
// layer without parameters), nearest upsampling copies and moves relevance as it is, so LRP-0
// is the gradient times the input. Relevance passed back through bilinear upsampling's ordinary
// gradient (J^T R) would not be: the test fails without the rule.
TEST(Lrp, UpsamplingTakesTheNormRuleOrMovesRelevance) {
  torch::manual_seed(44);
  torch::jit::Module net("LrpUpsample", test::SharedUnit(), true);
  net.register_parameter("k1", torch::randn({4, 3, 3, 3}, torch::kFloat64), false);
  net.register_parameter("k2", torch::randn({5, 4, 3, 3}, torch::kFloat64), false);
  net.register_parameter("v", torch::randn({3, 5}, torch::kFloat64), false);
  net.define(
      "def forward(self, x):\n"
      "    h = torch.relu(torch.conv2d(x, self.k1, None, [1, 1], [1, 1]))\n"
      "    h = torch.upsample_bilinear2d(h, [11, 13], False)\n"
      "    h = torch.relu(torch.conv2d(h, self.k2, None, [1, 1], [1, 1]))\n"
      "    h = torch.upsample_nearest2d(h, [22, 26])\n"
      "    return torch.linear(h.mean([2, 3]), self.v)\n");
  auto model = test::SaveAndLoad(net, 3, 6, 7);
  for (int64_t t = 0; t < 3; ++t) {
    const torch::Tensor x = torch::randn({1, 3, 6, 7}, torch::kFloat64);
    const auto lrp = RunTechnique("lrp", *model, x, t, {{"epsilon", 0.0}});
    const auto gxi = RunTechnique("input-x-gradient", *model, x, t);
    EXPECT_TRUE(test::AllClose(lrp.artifacts[0].tensor, gxi.artifacts[0].tensor, 1e-12)) << t;
    EXPECT_EQ(lrp.metrics["lrp"]["normalized"]["upsample_bilinear2d"], 1) << lrp.metrics["lrp"].dump();
    EXPECT_TRUE(lrp.metrics["lrp"]["ordinary_gradient"].empty()) << lrp.metrics["lrp"].dump();
    EXPECT_LT(lrp.metrics["conservation"]["relative_delta"].get<double>(), 1e-12);
  }
}

// A squeeze-and-excitation block, no biases: h = relu(conv(x)), s = sigmoid(conv1x1(mean(h))),
// h * s -> mean -> linear. The gate rule passes all relevance to h and none to the gate, so LRP-0
// is the gradient times the input of the same network with s held constant (detached).
TEST(Lrp, GateProductPassesRelevanceToTheSignalOnly) {
  torch::manual_seed(43);
  torch::jit::Module net("LrpGate", test::SharedUnit(), true);
  net.register_parameter("k", torch::randn({4, 3, 3, 3}, torch::kFloat64), false);
  net.register_parameter("q", torch::randn({4, 4, 1, 1}, torch::kFloat64), false);
  net.register_parameter("v", torch::randn({3, 4}, torch::kFloat64), false);
  net.define(
      "def forward(self, x):\n"
      "    h = torch.relu(torch.conv2d(x, self.k, None, [1, 1], [1, 1]))\n"
      "    s = torch.sigmoid(torch.conv2d(h.mean([2, 3], True), self.q))\n"
      "    return torch.linear((s * h).mean([2, 3]), self.v)\n");
  auto model = test::SaveAndLoad(net, 3, 6, 6);
  const auto k = net.attr("k").toTensor(), q = net.attr("q").toTensor(), v = net.attr("v").toTensor();
  for (int64_t t = 0; t < 3; ++t) {
    const torch::Tensor x = torch::randn({1, 3, 6, 6}, torch::kFloat64).requires_grad_(true);
    const torch::Tensor h = torch::relu(torch::conv2d(x, k, {}, 1, 1));
    const torch::Tensor s = torch::sigmoid(torch::conv2d(h.mean({2, 3}, true), q)).detach();
    const torch::Tensor logit = torch::linear((s * h).mean({2, 3}), v)[0][t];
    const torch::Tensor expected = x * torch::autograd::grad({logit}, {x})[0];
    const auto lrp = RunTechnique("lrp", *model, x.detach(), t, {{"epsilon", 0.0}});
    EXPECT_TRUE(test::AllClose(lrp.artifacts[0].tensor, expected.detach(), 1e-12)) << t;
    EXPECT_EQ(lrp.metrics["lrp"]["passed"]["mul (gate)"], 1);
    EXPECT_FALSE(lrp.metrics["lrp"]["ordinary_gradient"].contains("sigmoid")) << lrp.metrics["lrp"].dump();
    EXPECT_FALSE(lrp.metrics["lrp"]["ordinary_gradient"].contains("mul")) << lrp.metrics["lrp"].dump();
    EXPECT_LT(lrp.metrics["conservation"]["relative_delta"].get<double>(), 1e-12);
    // The ordinary gradient through the gate differs: the rule is what the test sees.
    const auto plain = RunTechnique("input-x-gradient", *model, x.detach(), t);
    EXPECT_GT((plain.artifacts[0].tensor - expected).abs().max().item<double>(), 1e-6);
  }
}

// Shape arithmetic on tensors, as a traced model records TensorFlow's SAME padding (size ->
// NumToTensor -> floor_divide, sub -> Int) carries no relevance: no "ordinary gradient" warning for
// it, and LRP-0 of the bias-free ReLU net stays gradient x input. An op on the signal that no rule
// covers (sin) is still named.
TEST(Lrp, ShapeArithmeticIsNoOpOnTheRelevancePath) {
  torch::manual_seed(45);
  const auto net = [](const std::string& activation) {
    torch::jit::Module m("LrpShape", test::SharedUnit(), true);
    m.register_parameter("k", torch::randn({4, 3, 3, 3}, torch::kFloat64), false);
    m.register_parameter("v", torch::randn({3, 4}, torch::kFloat64), false);
    m.define(
        "def forward(self, x):\n"
        "    pad = torch.floor_divide(torch.tensor(x.size(2)) + 1, 2) - 2\n"
        "    p = int(pad)\n"
        "    h = " + activation + "(torch.conv2d(x, self.k, None, [1, 1], [p, p]))\n"
        "    return torch.linear(h.mean([2, 3]), self.v)\n");
    return test::SaveAndLoad(m, 3, 6, 6);
  };
  const torch::Tensor x = torch::randn({1, 3, 6, 6}, torch::kFloat64);
  auto relu = net("torch.relu");
  testing::internal::CaptureStderr();
  const auto lrp = RunTechnique("lrp", *relu, x, 1, {{"epsilon", 0.0}});
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(lrp.metrics["lrp"]["ordinary_gradient"].empty()) << lrp.metrics["lrp"].dump();
  EXPECT_EQ(log.find("ordinary gradient"), std::string::npos) << log;
  const auto gxi = RunTechnique("input-x-gradient", *relu, x, 1);
  EXPECT_TRUE(test::AllClose(lrp.artifacts[0].tensor, gxi.artifacts[0].tensor, 1e-12));
  auto sine = net("torch.sin");
  const auto other = RunTechnique("lrp", *sine, x, 1);
  EXPECT_EQ(other.metrics["lrp"]["ordinary_gradient"], Json({{"sin", 1}})) << other.metrics["lrp"].dump();
}

// Captum's LRP (EpsilonRule on every layer, epsilon 1e-9), float64, target 281, on the shared
// SqueezeNet 1.0 (tools/check_captum_lrp.py). Its convergence delta (logit - sum) is what netlens
// reports as absorbed by the biases.
TEST(Lrp, EqualsCaptumsOnSqueezeNet) {
  auto model = test::SharedSqueezeNet("float64");
  if (!model) GTEST_SKIP() << "no shared models at " << test::SharedModels();
  auto gen = at::detail::createCPUGenerator(5);
  const torch::Tensor x = torch::randn({1, 3, 224, 224}, gen, torch::kFloat64);
  const auto out = RunTechnique("lrp", *model, x, 281);
  const torch::Tensor attr = out.artifacts[0].tensor;
  EXPECT_NEAR(attr.sum().item<double>(), 1.6857687167611555, 1e-9);
  EXPECT_NEAR(attr.abs().sum().item<double>(), 161.73187897542033, 1e-9);
  EXPECT_NEAR(attr[0][0][208][18].item<double>(), -0.05254365998163685, 1e-12);
  EXPECT_NEAR(attr[0][1][136][164].item<double>(), -0.04966238126165764, 1e-12);
  EXPECT_NEAR(attr[0][1][93][92].item<double>(), -0.04540791660398031, 1e-12);
  const Json& c = out.metrics["conservation"];
  EXPECT_NEAR(c["output"].get<double>(), 1.8357401650036216, 1e-9);
  EXPECT_NEAR(c["absorbed"].get<double>(), 0.1499714482424659, 1e-9);
  EXPECT_LT(c["relative_delta"].get<double>(), 1e-6);
  EXPECT_EQ(out.metrics["lrp"]["rules"]["epsilon"], 26);
  EXPECT_TRUE(out.metrics["lrp"]["ordinary_gradient"].empty()) << out.metrics["lrp"].dump();
}

TEST(Lrp, CompositesAssignRulesByLayerAndNameTheirErrors) {
  auto model = test::SharedSqueezeNet("float64");
  if (!model) GTEST_SKIP() << "no shared models at " << test::SharedModels();
  const torch::Tensor x = torch::randn({1, 3, 224, 224}, at::detail::createCPUGenerator(6), torch::kFloat64);
  const auto out = RunTechnique("lrp", *model, x, 281, {{"composite", "epsilon-plus-flat"}, {"layer_rules", {"classifier.1=epsilon"}}});
  const Json& layers = out.metrics["lrp"]["layers"];
  ASSERT_EQ(layers.size(), 26u);
  EXPECT_EQ(layers[0]["layer"], "features.0");
  EXPECT_EQ(layers[0]["rule"], "flat");
  EXPECT_EQ(layers[1]["rule"], "zplus");
  EXPECT_EQ(layers[25]["layer"], "classifier.1");
  EXPECT_EQ(layers[25]["rule"], "epsilon");
  EXPECT_LT(out.metrics["conservation"]["relative_delta"].get<double>(), 1e-6);
  EXPECT_GT(out.artifacts[0].tensor.sum().item<double>(), 0);  // z+ passes positive relevance only
  // zbox on the first layer: its input is the file's own preprocessing of the image (x * std + mean,
  // x 255, RGB -> BGR, minus the Caffe mean), which the bounds go through too.
  const auto box = RunTechnique("lrp", *model, x, 281, {{"composite", "epsilon-gamma-box"}});
  EXPECT_TRUE(torch::isfinite(box.artifacts[0].tensor).all().item<bool>());
  EXPECT_LT(box.metrics["conservation"]["relative_delta"].get<double>(), 1e-6);
  const auto throws = [&](Json options, const std::string& needle) {
    try {
      RunTechnique("lrp", *model, x, 281, std::move(options));
      ADD_FAILURE() << "no error for " << needle;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  throws({{"layer_rules", {"features.3.sqeeze=flat"}}}, "did you mean \"features.3.squeeze\"");
  throws({{"layer_rules", {"features.0=flatt"}}}, "did you mean \"flat\"");
  throws({{"layer_rules", {"features.0"}}}, "KEY=RULE");
  throws({{"layer_rules", {"features.3.squeeze=zbox"}}}, "give zbox to the first layer only");
  throws({{"composite", "epsilon-alpha2-beta1"}, {"alpha", 3}}, "alpha - beta = 1");
}

}  // namespace
}  // namespace netlens
