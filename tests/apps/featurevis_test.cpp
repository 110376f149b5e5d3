// End-to-end tests of the image-optimization techniques on the real SqueezeNet in
// ../shared/models: what the pictures do to the model, checked outside netlens' own figures.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "netlens/image/image_io.h"
#include "netlens/image/npy.h"
#include "netlens/optvis/objective.h"
#include "netlens/optvis/picture.h"
#include "netlens/optvis/transform.h"
#include "tests/test_util.h"

namespace netlens {
namespace {
namespace fs = std::filesystem;

std::string Shared(const std::string& file) { return test::SharedModels() + "/" + file; }
test::ShellResult RunNetlens(const std::string& args) {
  return test::Shell(test::NetlensBinary() + " " + args);
}

torch::Tensor ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return ParseNpy(bytes.str());
}

class Featurevis : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Shared("squeezenet1_0.pt"))) GTEST_SKIP() << "no shared models";
    ModelRequest request;
    request.path = Shared("squeezenet1_0.pt");
    request.device = "cpu";
    model_ = Model::Load(request);
  }
  // Activations at `layer` of pictures in [0, 1] (N x 3 x h x w), resampled to the model's input.
  torch::Tensor Activations(const torch::Tensor& pictures, const std::string& layer) {
    optvis::TransformOptions plain = optvis::TransformOptions::None();
    plain.out_height = model_->meta().height;
    plain.out_width = model_->meta().width;
    optvis::Transform resample(plain, 0);
    torch::NoGradGuard no_grad;
    const torch::Tensor x = optvis::ToModelInput(resample(pictures.to(torch::kFloat32)), model_->meta());
    return model_->lens().Forward(x, {layer}, BackwardRule::kVanilla, false).activations[0];
  }
  // The mean over 16 draws of Lucid's standard transforms: what survives jitter, scale, rotation.
  double RobustChannelMean(const torch::Tensor& pictures, int64_t channel) {
    optvis::TransformOptions o = optvis::TransformOptions::Standard();
    o.out_height = model_->meta().height;
    o.out_width = model_->meta().width;
    optvis::Transform t(o, 99);
    torch::NoGradGuard no_grad;
    double sum = 0;
    for (int i = 0; i < 16; ++i) {
      const torch::Tensor x = optvis::ToModelInput(t(pictures.to(torch::kFloat32)), model_->meta());
      sum += model_->lens().Forward(x, {"features.12"}, BackwardRule::kVanilla, false)
                 .activations[0][0][channel].mean().item<double>();
    }
    return sum / 16;
  }
  std::shared_ptr<Model> model_;
};

TEST_F(Featurevis, RaisesTheChannelFarAboveStartAndPhoto) {
  const std::string out = test::TempDir("out");
  const auto r = RunNetlens("featurevis --model " + Shared("squeezenet1_0.pt") +
                            " --objective features.12:1 --steps 96 --frames 4 --thresholds 8 --progress none --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const torch::Tensor picture = ReadNpy(out + "/featurevis_features.12-1.npy");
  ASSERT_EQ(picture.sizes().vec(), (std::vector<int64_t>{1, 3, 128, 128}));
  const double optimized = Activations(picture, "features.12")[0][1].mean().item<double>();
  const double start = Activations(ReadNpy(out + "/featurevis_features.12-1_step8.npy"), "features.12")[0][1].mean().item<double>();
  const InputImage photo = PrepareInput(Shared("images/cat.png"), *model_, ResizePolicy::kCrop);
  const double natural = model_->lens().Forward(photo.tensor, {"features.12"}).activations[0][0][1].mean().item<double>();
  EXPECT_GT(optimized, 4 * start) << optimized << " vs start " << start;
  EXPECT_GT(optimized, 4 * natural) << optimized << " vs photo " << natural;
  // A pixel-parameterized run without transforms makes a picture that does not survive them.
  const std::string pixel = test::TempDir("pixel");
  ASSERT_EQ(RunNetlens("featurevis --model " + Shared("squeezenet1_0.pt") + " --objective features.12:1 "
                       "--steps 96 --param pixel --transforms none --frames 0 --progress none --out " + pixel).code, 0);
  const double robust = RobustChannelMean(picture, 1);
  const double robust_pixel = RobustChannelMean(ReadNpy(pixel + "/featurevis_features.12-1.npy"), 1);
  EXPECT_GT(robust, 1.5 * robust_pixel) << robust << " vs pixel " << robust_pixel;
  const Json m = Json::parse(std::ifstream(out + "/manifest.json"));
  const Json& job = m["jobs"][0];
  EXPECT_EQ(job["metrics"]["objective_curve"].size(), 96u);
  EXPECT_TRUE(fs::exists(out + "/featurevis_features.12-1_steps.gif"));
  EXPECT_FALSE(job.contains("image"));
}

TEST_F(Featurevis, DiversityMakesTheBatchDiffer) {
  const std::string plain = test::TempDir("plain"), diverse = test::TempDir("diverse");
  const std::string common = "featurevis --model " + Shared("squeezenet1_0.pt") +
                             " --objective 'features.12:1..2' --size 64 --steps 48 --frames 0 --progress none --out ";
  ASSERT_EQ(RunNetlens(common + plain).code, 0);
  const auto r = RunNetlens(common + diverse + " --diversity 1000");
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_TRUE(fs::exists(diverse + "/featurevis_features.12-1..2_grid.png"));
  const double d_plain = optvis::Diversity(Activations(ReadNpy(plain + "/featurevis_features.12-1..2.npy"), "features.12")).item<double>();
  const double d_diverse = optvis::Diversity(Activations(ReadNpy(diverse + "/featurevis_features.12-1..2.npy"), "features.12")).item<double>();
  EXPECT_GT(d_diverse, d_plain) << "diversity " << d_diverse << " vs " << d_plain;
}

TEST_F(Featurevis, BadObjectivesAreUsageErrors) {
  const std::string base = "featurevis --model " + Shared("squeezenet1_0.pt") + " --out " + test::TempDir("bad");
  auto r = RunNetlens(base + " --objective 'features.12:1 - featres.9:7'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("column 17"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean \"features.9\""), std::string::npos) << r.output;
  r = RunNetlens(base + " --objective features.12:512");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("512 channels (0..511)"), std::string::npos) << r.output;
  // A batch that cannot fit is refused before it starts, naming a batch that would.
  r = RunNetlens(base + " --objective features.12:0..511 --size 512 --memory-limit 2G");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("512 picture(s) of 512x512 need about"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("at a time"), std::string::npos) << r.output;
  r = RunNetlens(base + " --objective features.12:1 --image " + Shared("images/cat.png"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("takes no image"), std::string::npos) << r.output;
}

TEST_F(Featurevis, InvertMatchesTheLayerAndDeepDreamKeepsTheSize) {
  const std::string out = test::TempDir("invert");
  auto r = RunNetlens("invert --model " + Shared("squeezenet1_0.pt") + " --image " + Shared("images/cat.png") +
                      " --layer features.4 --steps 64 --frames 0 --progress none --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const Json job = Json::parse(std::ifstream(out + "/manifest.json"))["jobs"][0];
  EXPECT_LT(job["metrics"]["relative_error"].get<double>(), 0.6);
  EXPECT_TRUE(fs::exists(out + "/cat_invert_features.4_pair_grid.png"));
  // The memory check counts invert's optimizer too, before the first step: the pass (98 MB) fits
  // the budget, the pass and 50 pairs of history do not.
  r = RunNetlens("invert --model " + Shared("squeezenet1_0.pt") + " --image " + Shared("images/cat.png") +
                 " --layer features.4 --optimizer lbfgs --lbfgs-history 50 --memory-limit 130M --out " +
                 test::TempDir("invert_big"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("invert: 1 picture(s) of 224x224 need about"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("L-BFGS's history of 50 steps"), std::string::npos) << r.output;

  const std::string dd = test::TempDir("deepdream");
  r = RunNetlens("deepdream --model " + Shared("squeezenet1_0.pt") + " --image " + Shared("images/cat.png") +
                 " --layer features.9 --octaves 2 --steps 4 --out " + dd);
  ASSERT_EQ(r.code, 0) << r.output;
  const torch::Tensor dream = ReadNpy(dd + "/cat_deepdream.npy");
  const cv::Mat original = ReadImage(Shared("images/cat.png"));
  EXPECT_EQ(dream.size(2), original.rows);
  EXPECT_EQ(dream.size(3), original.cols);
  EXPECT_TRUE(fs::exists(dd + "/cat_deepdream_steps.gif"));
}

// Style transfer, every metric, and Gram statistics with each optimizer at its default step size
// (Adam once ran at L-BFGS's step of 1.0 and raised the loss 15x): from the content, the style
// loss drops 10x while the content loss (normalized by the style image's own) stays below 1.
TEST_F(Featurevis, StyleLowersStyleLossTenfoldKeepingContent) {
  int run = 0;
  for (const std::string metric : {"gram", "moments", "cross", "sliced-wasserstein", "gram --optimizer adam"}) {
    const std::string out = test::TempDir("style_" + std::to_string(run++));
    const auto r = RunNetlens("style --model " + Shared("squeezenet1_0.pt") + " --content " + Shared("images/cat.png") +
                              " --style " + Shared("images/starry_night.jpg") + " --style-metric " + metric +
                              " --size 128 --steps 100 --frames 4 --progress none --out " + out);
    ASSERT_EQ(r.code, 0) << r.output;
    const Json job = Json::parse(std::ifstream(out + "/manifest.json"))["jobs"][0];
    const Json& m = job["metrics"];
    EXPECT_LT(m["style_loss_last"].get<double>(), m["style_loss_first"].get<double>() / 10) << metric << " " << m.dump();
    EXPECT_LT(m["content_loss_last"].get<double>(), 1.0) << metric;
    EXPECT_TRUE(fs::exists(out + "/cat_style_starry_night.png")) << metric;
    EXPECT_TRUE(fs::exists(out + "/cat_style_starry_night_steps.gif")) << metric;
  }
}

TEST_F(Featurevis, StyleBadInputIsAUsageError) {
  const std::string base = "style --model " + Shared("squeezenet1_0.pt") + " --content " + Shared("images/cat.png") +
                           " --out " + test::TempDir("bad");
  auto r = RunNetlens(base + " --style nope.jpg");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("nope.jpg"), std::string::npos) << r.output;
  r = RunNetlens(base + " --style " + Shared("images/scream.jpg") + " --style-weight 0.5,0.5");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("one weight per image"), std::string::npos) << r.output;
  r = RunNetlens(base + " --style " + Shared("images/scream.jpg") + " --style-layer classifier");
  EXPECT_EQ(r.code, 2);
  // A task file's dry run names the missing style file with its position.
  const std::string dir = test::TempDir("dry");
  test::WriteText(dir + "/t.yaml", "model: " + Shared("squeezenet1_0.pt") + "\ntasks:\n  - technique: style\n"
                  "    content: " + Shared("images/cat.png") + "\n    style: missing.jpg\n");
  r = RunNetlens("run " + dir + "/t.yaml --dry-run");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("missing.jpg\" not found"), std::string::npos) << r.output;
  r = RunNetlens(base + " --style " + Shared("images/scream.jpg") + " --image " + Shared("images/cat.png"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--content and --style"), std::string::npos) << r.output;
  // A picture that fits the budget with Adam (its pass about 5.4 GB) but not with L-BFGS's
  // history (200 copies of it, 6.8 GB more) is refused before the first step, naming the history
  // and Adam; no picture, array or animation is written.
  const std::string big = test::TempDir("big") + "/out";
  r = RunNetlens("style --model " + Shared("squeezenet1_0.pt") + " --content " + Shared("images/cat.png") + " --style " +
                 Shared("images/scream.jpg") + " --size 2048 --memory-limit 8G --out " + big);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("L-BFGS's history of 100 steps"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--optimizer adam or a shorter --lbfgs-history"), std::string::npos) << r.output;
  // A shorter history is counted as given (20 + 4 copies of the picture).
  r = RunNetlens("style --model " + Shared("squeezenet1_0.pt") + " --content " + Shared("images/cat.png") + " --style " +
                 Shared("images/scream.jpg") + " --size 2048 --lbfgs-history 10 --memory-limit 4G --out " + test::TempDir("big_h"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("L-BFGS's history of 10 steps 806 MB"), std::string::npos) << r.output;
  for (const auto& entry : fs::directory_iterator(big))
    EXPECT_TRUE(entry.path().extension() == ".json" || entry.path().extension() == ".log") << entry.path();
  // Sliced-wasserstein without --optimizer runs with Adam: its moments are counted, not L-BFGS's
  // history (a budget under the pass alone, so that the refusal lists what was counted).
  r = RunNetlens("style --model " + Shared("squeezenet1_0.pt") + " --content " + Shared("images/cat.png") + " --style " +
                 Shared("images/scream.jpg") + " --style-metric sliced-wasserstein --size 2048 --memory-limit 4G --out " +
                 test::TempDir("big_sw"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("Adam's moments"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("L-BFGS"), std::string::npos) << r.output;
  // ... and --lbfgs-history given there is ignored with the warning every Adam run gets.
  r = RunNetlens("style --model " + Shared("squeezenet1_0.pt") + " --content " + Shared("images/cat.png") + " --style " +
                 Shared("images/scream.jpg") + " --style-metric sliced-wasserstein --lbfgs-history 10 --size 2048 "
                 "--memory-limit 4G --out " + test::TempDir("big_sw_h"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--lbfgs-history applies to L-BFGS; ignored with adam"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Adam's moments"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace netlens
