// The lens on torchvision architectures, traced and scripted (random weights, exported by
// tools/export_test_models.py into NETLENS_TEST_MODELS): every module that PyTorch's forward hooks
// see with a tensor output is capturable by the lens with the same shape and values, in one pass.
// Also: real pretrained models from ../shared/models, float64 gradients equal plain autograd.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <fstream>

#include "netlens/core/strings.h"
#include "netlens/model/graph.h"
#include "netlens/model/model.h"
#include "netlens/techniques/common.h"
#include "tests/techniques/fixtures.h"
#include "tests/test_util.h"

namespace netlens {
namespace {

namespace fs = std::filesystem;

torch::Tensor ProbeInput() {  // as probe_input() in tools/export_test_models.py
  const int64_t n = 3 * 64 * 64;
  return (torch::arange(n, torch::kFloat64).fmod(251) / 251.0 - 0.5).view({1, 3, 64, 64}).to(torch::kFloat32);
}

std::shared_ptr<Model> LoadExport(const std::string& file, const std::string& dtype = "float32") {
  const std::string path = test::TestModels() + "/" + file;
  if (!fs::exists(path)) {
    if (std::getenv("NETLENS_REQUIRE_TEST_MODELS")) ADD_FAILURE() << "missing " << path;
    return nullptr;
  }
  return test::LoadCpuModel(path, dtype);
}

class Architectures : public ::testing::TestWithParam<std::string> {};

TEST_P(Architectures, EveryHookedModuleIsCapturedWithTheSameShapeAndValues) {
  const std::string name = GetParam();
  const std::string arch = name.substr(0, name.find('.'));
  auto model = LoadExport(name + ".pt");
  if (!model) GTEST_SKIP() << "export the test models first (tools/test.sh does)";
  std::ifstream in(test::TestModels() + "/" + arch + ".layers.json");
  const Json reference = Json::parse(in);
  // The census the guided rule reports counts what the lens replaces; these nets have only ReLUs.
  const ActivationCensus census = CountActivations(*InlinedForward(model->module()));
  EXPECT_EQ(census.Rectifiers(), model->lens().RectifierCount());
  EXPECT_GT(census.Rectifiers(), 0);
  EXPECT_EQ(census.Others(), 0);

  std::vector<std::string> paths;
  for (const auto& [path, record] : reference["layers"].items()) {
    const LayerInfo& info = model->lens().Info(model->lens().Resolve(path));
    EXPECT_TRUE(info.capturable) << path << ": " << info.why_not;
    paths.push_back(path);
  }
  ASSERT_GT(paths.size(), 5u);
  torch::NoGradGuard no_grad;
  const auto capture = model->lens().Forward(ProbeInput(), paths);
  for (size_t i = 0; i < paths.size(); ++i) {
    const Json& record = reference["layers"][paths[i]];
    const auto& a = capture.activations[i];
    EXPECT_EQ(a.sizes().vec(), record["shape"].get<std::vector<int64_t>>()) << paths[i];
    const double sum = a.to(torch::kFloat64).sum().item<double>();
    const double want = record["sum"].get<double>();
    EXPECT_NEAR(sum, want, 1e-3 * std::abs(want) + 1e-4 * a.numel()) << paths[i];
  }
  const auto logits = reference["logits"].get<std::vector<double>>();
  EXPECT_TRUE(test::AllClose(capture.output[0], torch::tensor(logits).to(torch::kFloat32), 1e-3, 1e-3));
}

// Feature visualization runs on every architecture: the objective reads the last convolution
// through a graph cut after it, and gradients reach the picture.
TEST_P(Architectures, FeaturevisRunsToTheLastConvolution) {
  auto model = LoadExport(GetParam() + ".pt");
  if (!model) GTEST_SKIP() << "export the test models first (tools/test.sh does)";
  const auto outcome = test::RunTechnique("featurevis", *model, torch::Tensor(), 0,
                                          {{"objective", "last-conv:0 + 0.1*conv-0:0"}, {"steps", 4}, {"size", 48},
                                           {"frames", 0}, {"progress", "none"}});
  ASSERT_FALSE(outcome.artifacts.empty());
  const torch::Tensor picture = outcome.artifacts[0].tensor;
  EXPECT_EQ(picture.sizes().vec(), (std::vector<int64_t>{1, 3, 48, 48}));
  EXPECT_TRUE(torch::isfinite(picture).all().item<bool>());
  const auto curve = outcome.metrics["objective_curve"].get<std::vector<double>>();
  EXPECT_EQ(curve.size(), 4u);
  for (double v : curve) EXPECT_TRUE(std::isfinite(v));
}

// DeepLIFT's multipliers carry f(x) - f(0) through every architecture's rectifiers, max-pools,
// concatenations, batch norms and residual sums, traced and scripted (float64; relative error
// 1e-15 here except GoogLeNet, whose random-weight logits move by 1e-11: 3e-8. The random-weight
// SqueezeNet's output is constant; the pretrained one is DeepLift.FollowsItsRulesOnSqueezeNet).
TEST_P(Architectures, DeepLiftSumsToTheLogitDifference) {
  auto model = LoadExport(GetParam() + ".pt", "float64");
  if (!model) GTEST_SKIP() << "export the test models first (tools/test.sh does)";
  // A large input: random weights and batch norms at their initial statistics leave small logits.
  const torch::Tensor x = torch::randn({1, 3, 64, 64}, at::detail::createCPUGenerator(7), torch::kFloat64) * 50;
  const auto outcome = test::RunTechnique("deeplift", *model, x, 3);
  const Json& s = outcome.metrics["summation_to_delta"];
  EXPECT_LT(s["relative_delta"].get<double>(), 1e-6) << s.dump();
  EXPECT_EQ(outcome.metrics["activations"]["rewritten"].get<int64_t>(), model->lens().RectifierCount());
  // One backward pass over the input alone where the graph allows it (no max-pool, or one with only
  // linear ops, sums and rectifiers above it), the same map as the pass over the pair [x; 0].
  const std::string arch = GetParam().substr(0, GetParam().find('.'));
  const bool one_backward = arch == "resnet18" || arch == "mobilenet_v2" || arch == "densenet121";
  EXPECT_EQ(outcome.metrics["activations"]["backward"], one_backward ? "inputs" : "pairs");
  const Gradients pairs = TargetGradients(*model, torch::cat({x, torch::zeros_like(x)}), 3, {}, BackwardRule::kDeepLift);
  const torch::Tensor expected = x * pairs.input_grad.slice(0, 0, 1);
  const double scale = expected.abs().max().item<double>();
  EXPECT_LE((outcome.artifacts[0].tensor - expected).abs().max().item<double>(), 1e-12 * scale);
}

// LRP (Zennit's epsilon-plus-flat and epsilon-gamma-box, float64): every op between the input and
// the logits has a rule or only moves values, so the relevance at the input plus what biases and
// stabilizers absorb is the logit; batch norms after convolutions are folded into them; the z-box
// bounds reach the first layer through GoogLeNet's input transform.
TEST_P(Architectures, LrpConservesRelevance) {
  auto model = LoadExport(GetParam() + ".pt", "float64");
  if (!model) GTEST_SKIP() << "export the test models first (tools/test.sh does)";
  const torch::Tensor x = torch::randn({1, 3, 64, 64}, at::detail::createCPUGenerator(7), torch::kFloat64) * 50;
  for (const std::string composite : {"epsilon-plus-flat", "epsilon-gamma-box"}) {
    const auto outcome = test::RunTechnique("lrp", *model, x, 3, {{"composite", composite}});
    const Json& c = outcome.metrics["conservation"];
    EXPECT_LT(c["relative_delta"].get<double>(), 1e-6) << composite << " " << c.dump();
    const Json& lrp = outcome.metrics["lrp"];
    EXPECT_TRUE(lrp["ordinary_gradient"].empty()) << lrp["ordinary_gradient"].dump();
    EXPECT_EQ(lrp["layers"][0]["rule"], composite == "epsilon-plus-flat" ? "flat" : "zbox");
    const bool has_bn = GetParam().rfind("resnet", 0) == 0 || GetParam().rfind("mobilenet", 0) == 0 ||
                        GetParam().rfind("googlenet", 0) == 0;
    if (has_bn) EXPECT_GT(lrp["batch_norms_folded"].get<int64_t>(), 0);
    EXPECT_TRUE(torch::isfinite(outcome.artifacts[0].tensor).all().item<bool>()) << composite;
  }
}

// Gradients at layers only (Grad-CAM's pass): once the lens runs the model up to the layers
// frozen and inference-optimized (conv + batch norm folded), the logits, the activations and the
// gradients at the last convolution, and at a middle one with the last, are the plain pass' to
// float32 rounding on every architecture, traced and scripted.
TEST_P(Architectures, LayerGradientsFromAFrozenPrefixEqualThePlainPass) {
  auto model = LoadExport(GetParam() + ".pt");
  if (!model) GTEST_SKIP() << "export the test models first (tools/test.sh does)";
  Lens& lens = model->lens();
  int64_t convs = 0;
  for (const auto& l : lens.layers()) convs += l.capturable && l.type == "Conv2d";
  const std::vector<std::vector<std::string>> requests = {
      {lens.Resolve("last-conv")}, {lens.Resolve("conv-" + std::to_string(convs / 2)), lens.Resolve("last-conv")}};
  const torch::Tensor x = ProbeInput();
  const auto close = [](const torch::Tensor& a, const torch::Tensor& b) {
    return test::AllClose(a, b, 1e-4 * b.abs().max().item<double>() + 1e-7, 1e-4);
  };
  for (const auto& layers : requests) {
    SCOPED_TRACE(Join(layers, ", "));
    lens.SetFreezePrefixes(false);
    const auto plain = lens.ForwardForLayerGradients(x, layers);
    lens.SetFreezePrefixes(true);
    const auto split = lens.ForwardForLayerGradients(x, layers);
    EXPECT_TRUE(split.activations[0].is_leaf()) << "the plain pass ran";
    EXPECT_TRUE(close(split.output, plain.output));
    const auto grads = [](const Lens::Capture& c) {
      return torch::autograd::grad({c.output.select(1, 3).sum()}, c.activations, {}, false, false, true);
    };
    const auto g_plain = grads(plain), g_split = grads(split);
    for (size_t i = 0; i < layers.size(); ++i) {
      EXPECT_TRUE(close(split.activations[i], plain.activations[i])) << layers[i];
      ASSERT_TRUE(g_split[i].defined() && g_plain[i].defined()) << layers[i];
      EXPECT_TRUE(close(g_split[i], g_plain[i])) << layers[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Torchvision, Architectures,
    ::testing::Values("alexnet.traced", "alexnet.scripted", "vgg11.traced", "vgg11.scripted",
                      "vgg19.traced", "vgg19.scripted", "resnet18.traced", "resnet18.scripted", "densenet121.traced",
                      "densenet121.scripted", "googlenet.traced", "googlenet.scripted",
                      "mobilenet_v2.traced", "mobilenet_v2.scripted", "squeezenet1_0.traced",
                      "squeezenet1_0.scripted"),
    [](const auto& info) {
      std::string s = info.param;
      std::replace(s.begin(), s.end(), '.', '_');
      return s;
    });

// Style transfer without layer flags picks Gatys' classic set by VGG-19's module paths (a VGG-19
// of narrow widths: the same layout and names as torchvision's): conv1_1, conv2_1, conv3_1,
// conv4_1, conv5_1 for style and conv4_2 for content.
TEST(Architectures, StyleDefaultsToGatysLayersOnVgg19) {
  for (const char* kind : {"traced", "scripted"}) {
    const std::string model = test::TestModels() + "/vgg19." + kind + ".pt";
    if (!LoadExport(std::string("vgg19.") + kind + ".pt")) GTEST_SKIP();
    const std::string out = test::TempDir(std::string("vgg19_style_") + kind);
    const std::string assets = test::SourceDir() + "/assets/";
    const auto r = test::Shell(test::NetlensBinary() + " style --model " + model + " --content " + assets +
                               "content/home.jpg --style " + assets + "style/the_kiss.jpg --size 64 --steps 2" +
                               " --frames 0 --progress none --out " + out);
    ASSERT_EQ(r.code, 0) << r.output;
    const Json layers = Json::parse(std::ifstream(out + "/manifest.json"))["jobs"][0]["metrics"]["layers"];
    EXPECT_EQ(layers["content"], Json::parse(R"(["features.21"])")) << kind;
    EXPECT_EQ(layers["style"], Json::parse(R"(["features.0", "features.5", "features.10", "features.19", "features.28"])"))
        << kind;
  }
}

// ResNet's `relu` module is an in-place ReLU: capturing its output under a rule that replaces the
// relu_ node (guided, deeplift) gives the same values as the plain forward, and a gradient flows
// back to it. (The rewrite once destroyed the captured node before the graph returned it.)
TEST(Architectures, RulesCaptureTheOutputOfAnInPlaceRelu) {
  for (const char* file : {"resnet18.traced.pt", "resnet18.scripted.pt"}) {
    auto model = LoadExport(file, "float64");
    if (!model) GTEST_SKIP();
    const torch::Tensor x = ProbeInput().to(torch::kFloat64);
    const torch::Tensor plain = model->lens().Forward(x, {"relu"}, BackwardRule::kVanilla).activations[0];
    const torch::Tensor xg = x.clone().requires_grad_(true);
    const auto guided = model->lens().Forward(xg, {"relu"}, BackwardRule::kGuided);
    EXPECT_TRUE(torch::equal(guided.activations[0], plain)) << file;
    const torch::Tensor g = torch::autograd::grad({guided.activations[0].sum()}, {xg})[0];
    EXPECT_GT(g.abs().sum().item<double>(), 0) << file;
  }
}

TEST(Architectures, GuidedDiffersFromVanillaOnDenseNet) {
  for (const char* file : {"densenet121.traced.pt", "densenet121.scripted.pt"}) {
    auto model = LoadExport(file);
    if (!model) GTEST_SKIP();
    // DenseNet-121: 2 ReLUs in each of 58 dense layers, 1 per transition (3), the stem and the head.
    EXPECT_EQ(model->lens().RectifierCount(), 121) << file;
    const auto x = ProbeInput();
    const auto vanilla = TargetGradients(*model, x, 3, {}, BackwardRule::kVanilla).input_grad;
    const auto guided = TargetGradients(*model, x, 3, {}, BackwardRule::kGuided).input_grad;
    EXPECT_GT((vanilla - guided).abs().max().item<double>(), 1e-3 * vanilla.abs().max().item<double>());
    // Guided gradients only pass positive signals through the last ReLU, so they differ in sign
    // structure from vanilla ones; both must be finite.
    EXPECT_TRUE(torch::isfinite(guided).all().item<bool>());
  }
}

// On the real pretrained models, the lens' vanilla gradient in float64 equals plain LibTorch
// autograd through the unmodified module.
class SharedModels : public ::testing::TestWithParam<std::string> {};

TEST_P(SharedModels, Float64LensGradientEqualsPlainAutograd) {
  const std::string path = test::SharedModels() + "/" + GetParam();
  if (!fs::exists(path)) GTEST_SKIP() << "no " << path;
  ModelRequest request;
  request.path = path;
  request.device = "cpu";
  request.dtype = "float64";
  if (GetParam().find("resnet20") != std::string::npos) request.overrides = {{"input_size", 32}};
  auto model = Model::Load(request);
  torch::manual_seed(0);
  const auto& m = model->meta();
  const torch::Tensor x = torch::randn({1, 3, m.height, m.width}, torch::kFloat64);
  const auto lens = TargetGradients(*model, x, 7, {model->lens().Resolve("last-conv")});

  torch::jit::Module plain = torch::jit::load(path, torch::kCPU);
  plain.eval();
  plain.to(torch::kFloat64);
  torch::Tensor xr = x.clone().requires_grad_(true);
  const torch::Tensor logits = LogitsOf(plain.forward({xr}));
  logits.select(1, 7).sum().backward();
  EXPECT_TRUE(test::AllClose(lens.input_grad, xr.grad(), 1e-9, 1e-9));
  EXPECT_TRUE(test::AllClose(lens.output, logits.detach(), 1e-10, 1e-10));
}

INSTANTIATE_TEST_SUITE_P(Pretrained, SharedModels,
                         ::testing::Values("squeezenet1_0.pt", "squeezenet1_0.scripted.pt",
                                           "mobilenet_v2.pt", "mobilenet_v1_025.scripted.pt",
                                           "resnet20_cifar10.scripted.pt"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) if (c == '.') c = '_';
                           return s;
                         });

}  // namespace
}  // namespace netlens
