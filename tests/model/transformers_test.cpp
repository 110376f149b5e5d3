// Vision transformers through the lens (issue 35): small versions of torchvision's
// VisionTransformer and Swin, a DeiT-style ViT with two prefix tokens and a ConvNeXt, exported
// traced and scripted by tools/export_test_models.py (random weights, 64 x 64, 8 x 8 patches).
// Token and channels-last layers are read as their grids by themselves; Grad-CAM on them equals
// pytorch-grad-cam's own code with the reshape_transform its users write by hand.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include <cmath>
#include <fstream>

#include "netlens/core/errors.h"
#include "netlens/model/layout.h"
#include "netlens/model/model.h"
#include "netlens/optvis/objective.h"
#include "netlens/runner/inspect.h"
#include "tests/techniques/fixtures.h"
#include "tests/test_util.h"

namespace netlens {
namespace {

namespace fs = std::filesystem;

torch::Tensor ProbeInput() {  // as probe_input() in tools/export_test_models.py, float64
  const int64_t n = 3 * 64 * 64;
  return (torch::arange(n, torch::kFloat64).fmod(251) / 251.0 - 0.5).view({1, 3, 64, 64});
}

// The export, or a test failure where the test models were not exported (tools/test.sh exports
// them; a missing file is never a skip).
std::shared_ptr<Model> LoadTransformer(const std::string& file, const std::string& dtype = "float64") {
  const std::string path = test::TestModels() + "/" + file;
  if (!fs::exists(path)) {
    ADD_FAILURE() << "missing " << path << " (tools/test.sh exports the test models)";
    return nullptr;
  }
  return test::LoadCpuModel(path, dtype);
}

struct CamRun {
  std::vector<Artifact> artifacts;
  Json metrics;
  std::vector<std::string> warnings;
};

CamRun RunOn(Model& model, const std::string& technique, Json options = Json::object(), int64_t target = 3) {
  const TechniqueInfo& t = FindTechnique(technique);
  Diagnostics diag;
  const Json values = ValidateObject(options, {&t.options}, "", nullptr, diag);
  diag.ThrowIfAny();
  Params params({&CommonOptions(), &t.options}, values);
  InputImage input;
  input.tensor = ProbeInput().to(model.dtype());
  input.display = cv::Mat(64, 64, CV_8UC3, cv::Scalar(128, 128, 128));
  TechniqueContext ctx{model, input, target, params};
  CamRun run;
  run.artifacts = t.run(ctx);
  run.metrics = ctx.metrics;
  run.warnings = ctx.warnings;
  return run;
}

// What the check scripts print of a map: its sum, absolute sum, the flat index and value of its
// largest magnitude, and its first value; compared to 1e-9 of the absolute sum.
struct MapFigures {
  double sum, abs_sum;
  int64_t top;
  double top_value, first;
};

void ExpectFigures(const torch::Tensor& map, const MapFigures& want, const std::string& what) {
  const double tol = 1e-9 * want.abs_sum;
  const torch::Tensor flat = map.flatten();
  EXPECT_NEAR(map.sum().item<double>(), want.sum, tol) << what;
  EXPECT_NEAR(map.abs().sum().item<double>(), want.abs_sum, tol) << what;
  EXPECT_EQ(flat.abs().argmax().item<int64_t>(), want.top) << what;
  EXPECT_NEAR(flat[want.top].item<double>(), want.top_value, tol) << what;
  EXPECT_NEAR(flat[0].item<double>(), want.first, tol) << what;
}

class Transformers : public ::testing::TestWithParam<std::string> {};  // "traced" or "scripted"

// tools/check_gradcam_transformers.py: pytorch-grad-cam's GradCAM (its ActivationsAndGradients
// hooks, its get_cam_image) on the eager modules with the exports' weights, float64, target 3:
// the raw map's size, sum, absolute sum, the flat index and value of its largest magnitude, and
// its first value.
struct Reference {
  const char* arch;
  const char* layer;
  int64_t h, w;
  double sum, abs_sum;
  int64_t top;
  double top_value, first;
};
const Reference kPytorchGradCam[] = {
    {"vit", "encoder.layers.encoder_layer_1.ln_1", 8, 8, -0.7820007886758664, 0.7820007886758664, 4, -0.023730387015753696, -0.01097822524117518},
    {"deit", "encoder.layers.encoder_layer_1.ln_1", 8, 8, 0.3452148213397927, 0.3452148213397927, 1, 0.009390671862166357, 0.00901099966371088},
    {"swin", "features.3.1.norm1", 8, 8, 0.00651894313373082, 0.01043754977340219, 20, 0.0004724875481177531, -0.00014168100263127896},
    {"swin", "norm", 8, 8, -0.04845727449026661, 0.07359568752635232, 54, -0.003339385760714893, 0.001909474184842764},
};

TEST_P(Transformers, GradCamEqualsPytorchGradCam) {
  for (const Reference& r : kPytorchGradCam) {
    auto model = LoadTransformer(std::string(r.arch) + "." + GetParam() + ".pt");
    if (!model) return;
    const CamRun run = RunOn(*model, "gradcam", {{"layer", Json::array({r.layer})}});
    ASSERT_EQ(run.artifacts.size(), 1u);
    const torch::Tensor cam = run.artifacts[0].tensor;
    ASSERT_EQ(cam.sizes().vec(), (std::vector<int64_t>{1, 1, r.h, r.w})) << r.arch << " " << r.layer;
    ExpectFigures(cam, {r.sum, r.abs_sum, r.top, r.top_value, r.first}, std::string(r.arch) + " " + r.layer);
  }
}

// Without --layer a transformer's CAM takes the deepest normalization whose patch positions reach
// the target: ViT's last block's first norm (the block's output, its MLP and second norm pass
// only the class token), found from one pass; the layout is recorded in the manifest's metrics.
// Swin's final norm reaches the head through the average pool; ConvNeXt stays a CNN (last-conv).
TEST_P(Transformers, DefaultLayerIsTheDeepestWhosePatchesReachTheTarget) {
  const std::vector<std::tuple<std::string, std::string, std::string>> expect{
      {"vit", "encoder.layers.encoder_layer_1.ln_1", "tokens(1+8x8)"},
      {"deit", "encoder.layers.encoder_layer_1.ln_1", "tokens(2+8x8)"},
      {"swin", "norm", "nhwc"},
      {"convnext", "features.3.0.block.0", ""}};
  for (const auto& [arch, layer, layout] : expect) {
    auto model = LoadTransformer(arch + "." + GetParam() + ".pt", "float32");
    if (!model) return;
    const CamRun run = RunOn(*model, "gradcam");
    ASSERT_EQ(run.artifacts.size(), 1u) << arch;
    EXPECT_EQ(run.artifacts[0].layer, layer) << arch;
    if (layout.empty()) {
      EXPECT_FALSE(run.metrics.contains("layer_layouts")) << arch << run.metrics.dump();
    } else {
      EXPECT_EQ(run.metrics["layer_layouts"][layer], layout) << arch << run.metrics.dump();
    }
    EXPECT_TRUE(torch::isfinite(run.artifacts[0].tensor).all().item<bool>()) << arch;
    EXPECT_GT(run.artifacts[0].tensor.abs().max().item<double>(), 0) << arch;
  }
}

// A chosen layer whose patch positions get no gradient (ViT's last block output) gives a zero
// map and says why and what to pick; a layer with no grid (the head) is refused naming its shape
// and the override.
TEST_P(Transformers, ZeroPatchGradientWarnsAndALayerWithoutGridIsRefused) {
  auto model = LoadTransformer("vit." + GetParam() + ".pt", "float32");
  if (!model) return;
  const CamRun run = RunOn(*model, "gradcam", {{"layer", Json::array({"encoder.layers.encoder_layer_1"})}});
  EXPECT_EQ(run.artifacts[0].tensor.abs().max().item<double>(), 0);
  ASSERT_EQ(run.warnings.size(), 1u);
  EXPECT_NE(run.warnings[0].find("ln_1"), std::string::npos) << run.warnings[0];
  try {
    RunOn(*model, "gradcam", {{"layer", Json::array({"heads"})}});
    ADD_FAILURE() << "the head has no positions";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("[1, 10]"), std::string::npos) << what;
    EXPECT_NE(what.find("--token-layout"), std::string::npos) << what;
  }
  // The override: two prefix tokens do not leave a grid of 65 - 2 = 63 patches.
  EXPECT_THROW(RunOn(*model, "gradcam", {{"layer", Json::array({"encoder.ln"})}, {"token_layout", "tokens:2"}}),
               UsageError);
}

// Every CAM reads token and channels-last layers through their grid: finite maps of the grid's
// size, with the same pass structure as on CNNs.
TEST_P(Transformers, EveryCamRunsOnTokenAndChannelsLastLayers) {
  for (const auto& [arch, layer] : std::vector<std::pair<std::string, std::string>>{
           {"vit", "encoder.layers.encoder_layer_1.ln_1"}, {"swin", "features.3.1.norm1"}}) {
    auto model = LoadTransformer(arch + "." + GetParam() + ".pt", "float32");
    if (!model) return;
    for (const std::string cam : {"gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam",
                                  "ablationcam"}) {
      const CamRun run = RunOn(*model, cam, {{"layer", Json::array({layer})}});
      ASSERT_FALSE(run.artifacts.empty()) << arch << " " << cam;
      const torch::Tensor map = run.artifacts[0].tensor;
      EXPECT_EQ(map.sizes().vec(), (std::vector<int64_t>{1, 1, 8, 8})) << arch << " " << cam;
      EXPECT_TRUE(torch::isfinite(map).all().item<bool>()) << arch << " " << cam;
    }
  }
}

// Layer attribution reads a token layer as its grid: conductance at the first block's output (every
// path to the logits passes it, so its units sum to the logit difference, prefix tokens included,
// up to the left Riemann sum's error, which shrinks as 1 / steps: on the cat photo 23% at 32 steps,
// 5.2% at 128, 1.3% at 512)
// gives an 8 x 8 map and 32 x 8 x 8 units; layer-gradient selects channel and neuron in the grid.
TEST_P(Transformers, LayerAttributionReadsTokensAsTheirGrid) {
  auto model = LoadTransformer("vit." + GetParam() + ".pt");
  if (!model) return;
  const std::string block = "encoder.layers.encoder_layer_0";
  const CamRun conductance = RunOn(*model, "layer-conductance", {{"layer", block}, {"steps", 512}});
  EXPECT_EQ(conductance.artifacts[0].tensor.sizes().vec(), (std::vector<int64_t>{1, 1, 8, 8}));
  EXPECT_EQ(conductance.artifacts[1].tensor.sizes().vec(), (std::vector<int64_t>{1, 32, 8, 8}));
  EXPECT_LT(conductance.metrics["completeness"]["relative_delta"].get<double>(), 0.02)
      << conductance.metrics["completeness"].dump();
  EXPECT_EQ(conductance.metrics["layer_layouts"][block], "tokens(1+8x8)");
  const CamRun influence = RunOn(*model, "internal-influence", {{"layer", block}, {"steps", 8}});
  EXPECT_EQ(influence.artifacts[0].tensor.sizes().vec(), (std::vector<int64_t>{1, 1, 8, 8}));
  // One neuron of channel 5 at grid position (3, 4) is token 1 + 3 * 8 + 4: its input gradient
  // equals autograd's of that token's channel.
  const CamRun neuron = RunOn(*model, "layer-gradient",
                              {{"layer", block}, {"channel", 5}, {"neuron", {3, 4}}, {"guided", false}});
  const torch::Tensor x = ProbeInput().requires_grad_(true);
  const auto capture = model->lens().Forward(x, {block});
  const torch::Tensor expected = torch::autograd::grad({capture.activations[0][0][1 + 3 * 8 + 4][5]}, {x})[0];
  EXPECT_TRUE(test::AllClose(neuron.artifacts[0].tensor, expected, 1e-12, 1e-12));
  EXPECT_THROW(RunOn(*model, "layer-gradient", {{"layer", block}, {"channel", 32}}), UsageError);
}

// tools/check_attention_transformers.py: rollout and Chefer et al.'s attribution in plain PyTorch
// over the attentions nn.MultiheadAttention returns with need_weights=True (float64, target 3):
// the map's sum, absolute sum, flat index and value of its largest magnitude, its first value.
struct AttentionReference {
  const char* method;
  const char* arch;
  double sum, abs_sum;
  int64_t top;
  double top_value, first;
};
const AttentionReference kPlainPyTorch[] = {
    {"rollout-mean-0.9", "vit", 0.2528923364511607, 0.2528923364511607, 8, 0.02344760947038696, 0.02242759236102776},
    {"rollout-max-0", "vit", 0.7625139546768362, 0.7625139546768362, 54, 0.016545659680937897, 0.014767704122024059},
    {"chefer", "vit", 1.212638128182574, 1.212638128182574, 19, 0.05804574173218062, 0.02948064814128515},
    {"rollout-mean-0.9", "deit", 0.3306764863227598, 0.3306764863227598, 16, 0.024505584256525683, 0.017622008605271664},
    {"rollout-max-0", "deit", 0.7933991002541154, 0.7933991002541154, 16, 0.019966573252359364, 0.015987884060768023},
    {"chefer", "deit", 0.1615600599599719, 0.1615600599599719, 16, 0.005867724827595213, 0.005370086984528932},
};

// The lens taps the post-softmax attention of every block, traced (explicit bmm/softmax) and
// scripted (nn.MultiheadAttention's softmax inside its fast-path branch), and the two maps equal
// the plain PyTorch computation to 1e-9.
TEST_P(Transformers, AttentionMapsEqualPlainPyTorch) {
  for (const AttentionReference& r : kPlainPyTorch) {
    auto model = LoadTransformer(std::string(r.arch) + "." + GetParam() + ".pt");
    if (!model) return;
    const std::string method = r.method;
    const CamRun run = method == "chefer" ? RunOn(*model, "transformer-attribution")
                       : method == "rollout-max-0"
                           ? RunOn(*model, "attention-rollout", {{"head_fusion", "max"}, {"discard", 0.0}})
                           : RunOn(*model, "attention-rollout");
    ASSERT_EQ(run.artifacts.size(), 1u);
    const torch::Tensor map = run.artifacts[0].tensor;
    ASSERT_EQ(map.sizes().vec(), (std::vector<int64_t>{1, 1, 8, 8})) << r.method << " " << r.arch;
    EXPECT_EQ(run.metrics["attention_blocks"], 2) << r.method << " " << r.arch;
    ExpectFigures(map, {r.sum, r.abs_sum, r.top, r.top_value, r.first}, std::string(r.method) + " " + r.arch);
  }
}

// Rollout on a model without global self-attention is refused naming the techniques that fit:
// Swin's attention is over windows (no layer holds that many tokens), a ConvNeXt has none.
TEST_P(Transformers, RolloutWithoutGlobalAttentionIsRefused) {
  for (const std::string arch : {"swin", "convnext"}) {
    auto model = LoadTransformer(arch + "." + GetParam() + ".pt", "float32");
    if (!model) return;
    for (const std::string technique : {"attention-rollout", "transformer-attribution"}) {
      try {
        RunOn(*model, technique);
        ADD_FAILURE() << technique << " ran on " << arch;
      } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("gradcam"), std::string::npos) << e.what();
      }
    }
  }
}

// gist on a transformer shows its blocks' first norms whose patches reach the target (ViT: both
// blocks' ln_1, not encoder.ln, which passes only the class token; Swin: 6 of its 7 first norms,
// the patch embedding's, each block's norm1, the patch merging's and the final one, spread
// evenly), each read through its layout, from one pass over the candidates.
TEST_P(Transformers, GistShowsTheBlocksFirstNorms) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> expect{
      {"vit", {"encoder.layers.encoder_layer_0.ln_1", "encoder.layers.encoder_layer_1.ln_1"}},
      {"swin",
       {"features.0.2", "features.1.0.norm1", "features.1.1.norm1", "features.3.0.norm1", "features.3.1.norm1", "norm"}}};
  for (const auto& [arch, rows] : expect) {
    auto model = LoadTransformer(arch + "." + GetParam() + ".pt", "float32");
    if (!model) return;
    const CamRun run = RunOn(*model, "gist", {{"steps", 2}, {"occlusion_grid", 2}});
    std::vector<std::string> layers;
    for (const auto& l : run.metrics["layers"]) layers.push_back(l["layer"]);
    EXPECT_EQ(layers, rows) << arch;
    EXPECT_EQ(run.metrics["layer_layouts"].size(), rows.size()) << run.metrics["layer_layouts"].dump();
    for (const auto& a : run.artifacts)
      if (a.tensor.defined()) EXPECT_TRUE(torch::isfinite(a.tensor.to(torch::kFloat64)).all().item<bool>()) << a.name;
  }
}

// Feature visualization objectives read a token layer through its layout: channel 3 is the mean
// of channel 3 over the patch tokens (not token 3), a channel past the 32 is refused, and a run at
// the model's fixed 64 x 64 (torchvision's ViT asserts its size) raises the objective.
TEST_P(Transformers, FeaturevisReadsTokenLayersAsChannels) {
  auto model = LoadTransformer("vit." + GetParam() + ".pt");
  if (!model) return;
  const std::string layer = "encoder.layers.encoder_layer_1.ln_1";
  const optvis::Objective objective = optvis::ParseObjective(layer + ":3", *model);
  const torch::Tensor x = ProbeInput();
  torch::NoGradGuard no_grad;
  const auto capture = model->lens().Forward(x, objective.layers);
  const double value = objective.Evaluate(capture.activations, capture.output, x)[0].item<double>();
  const double expected = capture.activations[0][0].slice(0, 1).select(1, 3).mean().item<double>();
  EXPECT_NEAR(value, expected, 1e-12);
  EXPECT_THROW(optvis::ParseObjective(layer + ":40", *model), UsageError);
  const CamRun run = RunOn(*model, "featurevis",
                           {{"objective", layer + ":3"}, {"steps", 8}, {"size", 64}, {"transforms", "none"},
                            {"frames", 0}, {"progress", "none"}});
  const auto curve = run.metrics["objective_curve"].get<std::vector<double>>();
  ASSERT_EQ(curve.size(), 8u);
  EXPECT_GT(curve.back(), curve.front());
}

// DeepLIFT and guided backprop on a transformer say which nonlinear ops keep their ordinary
// gradient (normalizations, softmax, attention's products of activations): the manifest lists them;
// a CNN's has no such entry.
TEST_P(Transformers, RulesNameTheOpsTheyLeaveWithTheirOrdinaryGradient) {
  auto vit = LoadTransformer("vit." + GetParam() + ".pt");
  if (!vit) return;
  for (const std::string technique : {"deeplift", "guided"}) {
    const CamRun run = RunOn(*vit, technique);
    const Json& kinds = run.metrics["activations"]["ordinary_gradient_kinds"];
    EXPECT_GE(kinds.value("layer_norm", 0), 5) << technique << " " << kinds.dump();  // 2 blocks x 2 + the final
    EXPECT_GE(kinds.value("softmax", 0), 2) << technique << " " << kinds.dump();
    EXPECT_GE(kinds.value("products of activations", 0), 4) << technique << " " << kinds.dump();
  }
  auto cnn = LoadTransformer("resnet18." + GetParam() + ".pt");
  if (!cnn) return;
  EXPECT_FALSE(RunOn(*cnn, "deeplift").metrics["activations"].contains("ordinary_gradient_kinds"));
}

// Every module PyTorch's hooks see with a tensor output (but Swin's StochasticDepth, the identity
// in eval mode) is captured with the same shape and values (tools/export_test_models.py records
// them), and inspect names each layer's layout.
TEST_P(Transformers, EveryHookedModuleIsCapturedAndInspectNamesLayouts) {
  for (const std::string arch : {"vit", "deit", "swin", "convnext"}) {
    auto model = LoadTransformer(arch + "." + GetParam() + ".pt", "float32");
    if (!model) return;
    const Json reference = Json::parse(std::ifstream(test::TestModels() + "/" + arch + ".layers.json"));
    std::vector<std::string> paths;
    for (const auto& [path, record] : reference["layers"].items()) {
      const LayerInfo& info = model->lens().Info(path);
      // Swin's StochasticDepth is the identity in eval mode: no op of its own (its output is its
      // input, captured at the layer before; scripted, it returns its input from a branch).
      if (info.type == "StochasticDepth") continue;
      if (!info.capturable) {
        ADD_FAILURE() << arch << " " << path << ": " << info.why_not;
        continue;
      }
      paths.push_back(path);
    }
    torch::NoGradGuard no_grad;
    const auto capture = model->lens().Forward(ProbeInput().to(torch::kFloat32), paths);
    for (size_t i = 0; i < paths.size(); ++i) {
      const Json& record = reference["layers"][paths[i]];
      const auto& a = capture.activations[i];
      EXPECT_EQ(a.sizes().vec(), record["shape"].get<std::vector<int64_t>>()) << arch << " " << paths[i];
      const double want = record["sum"].get<double>();
      EXPECT_NEAR(a.to(torch::kFloat64).sum().item<double>(), want, 1e-3 * std::abs(want) + 1e-4 * a.numel())
          << arch << " " << paths[i];
    }
    const Json info = InspectJson(*model);
    std::map<std::string, std::string> layouts;
    for (const auto& l : info["layers"])
      if (l.contains("layout")) layouts[l["path"]] = l["layout"];
    if (arch == "vit") EXPECT_EQ(layouts["encoder.layers.encoder_layer_1.ln_1"], "tokens(1+8x8)");
    if (arch == "deit") EXPECT_EQ(layouts["encoder.layers.encoder_layer_0"], "tokens(2+8x8)");
    if (arch == "swin") {
      EXPECT_EQ(layouts["features.0.0"], "nchw");  // the patch embedding's convolution
      EXPECT_EQ(layouts["features.1.0.norm1"], "nhwc");
    }
    if (arch == "convnext") {
      EXPECT_EQ(layouts["features.1.0.block.2"], "nhwc");  // the LayerNorm between the block's permutes
      EXPECT_EQ(layouts["features.1.0"], "nchw");
    }
  }
}

// A model whose code calls torchvision's C++ operators (a detection model's nms) cannot be
// loaded here: the message says which operator and what to export instead, not an empty line.
TEST(ModelLoad, TorchvisionOperatorsAreNamedWithTheRemedy) {
  const std::string path = test::TestModels() + "/nms_user.scripted.pt";
  ASSERT_TRUE(fs::exists(path)) << "missing " << path << " (tools/test.sh exports the test models)";
  try {
    test::LoadCpuModel(path);
    ADD_FAILURE() << "loaded";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("torchvision::nms"), std::string::npos) << what;
    EXPECT_NE(what.find("backbone"), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Torchvision, Transformers, ::testing::Values("traced", "scripted"));

}  // namespace
}  // namespace netlens
