// End-to-end tests of the netlens binary: files, manifest and exit codes for good and bad input,
// on the bundled Fashion-MNIST model and the real models in ../shared/models.
#include <gtest/gtest.h>
#include "netlens/model/libtorch.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "netlens/core/options.h"
#include "netlens/image/npy.h"
#include "tests/test_util.h"

namespace netlens {
namespace {

namespace fs = std::filesystem;
using Result = test::ShellResult;

Result RunNetlens(const std::string& args) { return test::Shell(test::NetlensBinary() + " " + args); }


std::string Shared(const std::string& file) { return test::SharedModels() + "/" + file; }
std::string Source(const std::string& file) { return test::SourceDir() + "/" + file; }

Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return Json::parse(in);
}

bool NoTempFiles(const std::string& dir) { return !test::HasTempFiles(dir); }

void RequireShared() {
  if (!fs::exists(Shared("squeezenet1_0.pt"))) GTEST_SKIP() << "no shared models at " << test::SharedModels();
}

TEST(Cli, GuidedOnSqueezeNetCatWritesEverything) {
  RequireShared();
  const std::string out = test::TempDir("out");
  const Result r = RunNetlens("guided --model " + Shared("squeezenet1_0.pt") + " --image " +
                       Shared("images/cat.png") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const Json m = ReadJson(out + "/manifest.json");
  EXPECT_FALSE(m["netlens_version"].get<std::string>().empty());
  const Json& job = m["jobs"][0];
  EXPECT_EQ(job["status"], "ok");
  EXPECT_EQ(job["technique"], "guided");
  const int64_t top1 = job["predictions"][0]["index"];
  EXPECT_GE(top1, 281);  // ImageNet's cat classes are 281..285
  EXPECT_LE(top1, 285);
  EXPECT_NE(job["predictions"][0]["label"].get<std::string>().find("cat"), std::string::npos);
  EXPECT_EQ(job["target"]["index"], top1);
  EXPECT_EQ(job["model"]["metadata_source"], "ImageNet defaults");
  EXPECT_EQ(job["device"], torch::cuda::is_available() ? "cuda:0" : "cpu");  // --device auto
  for (const char* stage : {"model", "image", "predict", "compute", "write"})
    EXPECT_TRUE(job["timings_ms"].contains(stage)) << stage;
  bool raw = false;
  for (const auto& o : job["outputs"]) {
    EXPECT_TRUE(fs::exists(out + "/" + o["path"].get<std::string>())) << o.dump();
    if (o["kind"] == "raw") {
      raw = true;
      EXPECT_EQ(o["shape"], Json::array({1, 3, 224, 224}));
    }
  }
  EXPECT_TRUE(raw);
  for (const char* f : {"cat_guided.npy", "cat_guided_pos.png", "cat_guided_neg.png", "cat_guided_heatmap.png", "netlens.log"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  EXPECT_TRUE(NoTempFiles(out));
  std::ifstream log(out + "/netlens.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("ImageNet defaults"), std::string::npos);
  EXPECT_NE(text.find("done in"), std::string::npos);
}

TEST(Cli, GradCamSeveralLayersAndTargetsOnResNet20) {
  RequireShared();
  const std::string out = test::TempDir("out");
  const Result r = RunNetlens("gradcam --model " + Shared("resnet20_cifar10.scripted.pt") +
                       " --input-size 32 --image " + Shared("images/bird.png") +
                       " --layer layer3,layer2 --target bird,top2 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const Json m = ReadJson(out + "/manifest.json");
  ASSERT_EQ(m["jobs"].size(), 3u);  // bird, then the top-2 classes
  EXPECT_EQ(m["jobs"][0]["target"]["label"], "bird");
  EXPECT_TRUE(fs::exists(out + "/bird_t2_gradcam_layer3.npy"));
  EXPECT_TRUE(fs::exists(out + "/bird_t2_gradcam_layer2_heatmap.png"));
}

TEST(Cli, BundledFashionModelRunsWithEmbeddedMetadata) {
  const std::string out = test::TempDir("out");
  const Result r = RunNetlens("guided-gradcam --model " + Source("models/fashion_cnn.pt") + " --image " +
                       Source("assets/fashion_mnist/ankle_boot.png") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const Json job = ReadJson(out + "/manifest.json")["jobs"][0];
  EXPECT_EQ(job["model"]["metadata_source"], "embedded netlens.json");
  EXPECT_EQ(job["predictions"][0]["label"], "Ankle boot");
  EXPECT_EQ(job["outputs"][0]["shape"], Json::array({1, 1, 28, 28}));
}

// evaluate --from: the maps a batch wrote are scored without recomputing them; the scores equal
// those of evaluate computing the same maps itself. A missing or misshapen map fails its own job.
TEST(Cli, EvaluateFromARunScoresItsMapsAndReportsBadOnes) {
  const std::string dir = test::TempDir("from");
  std::string images;
  for (const char* name : {"bag", "coat", "dress"})
    images += std::string(images.empty() ? "" : ", ") + Source("assets/fashion_mnist/") + name + ".png";
  // One image per pass, as evaluate computes its own maps: the scores compare to 1e-6 (a batched
  // float32 pass may differ in the last bits, and ranked pixels with them).
  test::WriteText(dir + "/batch.yaml", "model: " + Source("models/fashion_cnn.pt") + "\nout: " + dir + "/batch\n"
                  "batch_images: 1\nimage: [" + images + "]\ntasks:\n  - technique: saliency\n  - technique: gradcam\n");
  Result r = RunNetlens("run " + dir + "/batch.yaml --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  r = RunNetlens("evaluate --from " + dir + "/batch --metric deletion,insertion --steps 7 --out " + dir + "/scored");
  ASSERT_EQ(r.code, 0) << r.output;
  const Json jobs = ReadJson(dir + "/scored/manifest.json")["jobs"];
  ASSERT_EQ(jobs.size(), 3u);  // one per image
  r = RunNetlens("evaluate --model " + Source("models/fashion_cnn.pt") + " --image " + Source("assets/fashion_mnist/bag.png") +
                 " --techniques saliency,gradcam --metric deletion,insertion --steps 7 --out " + dir + "/direct");
  ASSERT_EQ(r.code, 0) << r.output;
  const Json direct = ReadJson(dir + "/direct/manifest.json")["jobs"][0]["metrics"]["scores"];
  const Json read = jobs[0]["metrics"]["scores"];
  ASSERT_EQ(read.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(read[i]["technique"], direct[i]["technique"]);
    EXPECT_NEAR(read[i]["value"].get<double>(), direct[i]["value"].get<double>(), 1e-6) << read[i];
  }
  EXPECT_TRUE(fs::exists(dir + "/scored/scores.csv"));
  // Break the bag's saliency map (removed) and the coat's gradcam map (another shape).
  const Json batch = ReadJson(dir + "/batch/manifest.json");
  const auto raw = [&](const std::string& technique, const std::string& image) {
    for (const auto& job : batch["jobs"])
      if (job["technique"] == technique && job["image"].get<std::string>().find(image) != std::string::npos)
        for (const auto& o : job["outputs"])
          if (o["kind"] == "raw") return dir + "/batch/" + o["path"].get<std::string>();
    return std::string();
  };
  const std::string missing = raw("saliency", "bag.png"), misshapen = raw("gradcam", "coat.png");
  ASSERT_TRUE(fs::remove(missing));
  std::ofstream(misshapen, std::ios::binary | std::ios::trunc) << NpyBytes(torch::zeros({3, 5}));
  r = RunNetlens("evaluate --from " + dir + "/batch --metric deletion --steps 3 --out " + dir + "/broken");
  EXPECT_EQ(r.code, 1) << r.output;
  const Json broken = ReadJson(dir + "/broken/manifest.json")["jobs"];
  ASSERT_EQ(broken.size(), 3u);
  EXPECT_EQ(broken[0]["status"], "failed");
  EXPECT_NE(broken[0]["error"].get<std::string>().find(fs::path(missing).filename().string() + "\" (saliency) is missing"),
            std::string::npos) << broken[0]["error"];
  EXPECT_EQ(broken[1]["status"], "failed");
  EXPECT_NE(broken[1]["error"].get<std::string>().find("has shape [3, 5]"), std::string::npos) << broken[1]["error"];
  EXPECT_EQ(broken[2]["status"], "ok");
  // Not a run folder: exit 2 with the remedy.
  r = RunNetlens("evaluate --from " + dir + " --out " + dir + "/none");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("no manifest.json"), std::string::npos) << r.output;
}

// Adebayo et al.'s finding on a real network: re-drawing SqueezeNet's top layers (the default
// cascade, 3 layers) changes the vanilla gradient's map a lot and guided backprop's little
// (guided backprop hardly depends on what the top layers compute).
TEST(Cli, EvaluateRandomizationShowsGuidedBackpropsWeaknessOnSqueezeNet) {
  RequireShared();
  const std::string out = test::TempDir("sanity");
  const Result r = RunNetlens("evaluate --model " + Shared("squeezenet1_0.pt") + " --image " + Shared("images/cat.png") +
                              " --techniques saliency,guided --metric randomization --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const Json scores = ReadJson(out + "/manifest.json")["jobs"][0]["metrics"]["scores"];
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_EQ(scores[0]["technique"], "saliency");
  const double saliency = scores[0]["value"], guided = scores[1]["value"];
  EXPECT_GT(guided, saliency + 0.2) << "mean rank correlation over the cascade: saliency " << saliency
                                    << ", guided " << guided;
  EXPECT_TRUE(scores[0]["passes"].get<bool>()) << scores[0];
  EXPECT_FALSE(scores[1]["passes"].get<bool>()) << scores[1];
  EXPECT_NE(r.output.find("guided randomization"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("FAILS the sanity check"), std::string::npos) << r.output;
  EXPECT_EQ(ReadJson(out + "/manifest.json")["jobs"][0]["metrics"]["randomization_layers"].size(), 3u);
}

TEST(Cli, BadInputGivesExitCodeTwoAndAClearMessage) {
  RequireShared();
  const std::string dir = test::TempDir("bad");
  test::WriteText(dir + "/model.pt", "this is text, not a model");
  test::WriteText(dir + "/broken.png", "\x89PNG garbage");
  test::WriteText(dir + "/one.npy", NpyBytes(torch::zeros({224, 224}, torch::kInt64)));
  const std::string model = " --model " + Shared("squeezenet1_0.pt");
  const std::string cat = " --image " + Shared("images/cat.png");
  const std::string out = " --out " + dir + "/out";
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases{
      {"guided --model " + dir + "/missing.pt" + cat + out, "not found"},
      {"guided --model " + dir + "/model.pt" + cat + out, "not a TorchScript archive"},
      {"guided" + model + " --image " + dir + "/broken.png" + out, "cannot be decoded"},
      {"gradcam" + model + cat + " --layer features.99" + out, "did you mean \"features.9\""},
      {"saliency" + model + cat + " --target 1000" + out, "out of range"},
      {"saliency" + model + cat + " --dtype float16" + out, "valid: float32, float64"},
      {"guidd" + model, "did you mean \"guided\""},
      {"saliency" + model + out, "missing required option \"image\""},
      {"gradcam" + model + cat + " --layr features.12" + out, "did you mean \"--layer\""},
      {"saliency" + model + cat + " --device cuda:7" + out, "cuda:7"},
      // A baseline image of another size than the input names both sizes.
      {"integrated-gradients" + model + cat + " --resize none --baseline " + Shared("images/scream.jpg") + out,
       "is 352x448 after preprocessing, the image 512x341"},
      {"lime" + model + cat + " --feature-mask " + dir + "/one.npy" + out, "gives 1 superpixel"},
      {"lrp" + model + cat + " --layer-rules features.3.sqeeze=flat" + out, "did you mean \"features.3.squeeze\""},
      {"lrp" + model + cat + " --composite epsilon-plus-flta" + out, "epsilon-plus-flat"},
      {"kernel-shap" + model + cat + " --feature-mask " + dir + "/model.pt" + out, "feature mask"},
  };
  for (const auto& c : cases) {
    const Result r = RunNetlens(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
  }
  EXPECT_TRUE(NoTempFiles(dir));
}

TEST(Cli, TaskFileRunsEveryJobAndReportsFailures) {
  RequireShared();
  const std::string dir = test::TempDir("tasks");
  test::WriteText(dir + "/run.yaml",
                  "model: " + Shared("squeezenet1_0.pt") + "\n"
                  "out: " + dir + "/out\n"
                  "tasks:\n"
                  "  - technique: saliency\n"
                  "    image: [" + Shared("images/bird.png") + ", " + dir + "/missing.png]\n"
                  "  - technique: gradcam\n"
                  "    name: cam\n"
                  "    image: " + Shared("images/coffee.png") + "\n"
                  "    layer: features.12\n");
  Result r = RunNetlens("run " + dir + "/run.yaml --dry-run");
  EXPECT_EQ(r.code, 2) << r.output;  // the dry run checks that images exist
  EXPECT_NE(r.output.find("tasks[0].image (" + dir + "/run.yaml:5:5): image \"" + dir + "/missing.png\" not found"),
            std::string::npos) << r.output;
  r = RunNetlens("run " + dir + "/run.yaml");
  EXPECT_EQ(r.code, 1) << r.output;  // one job failed, the others ran
  const Json m = ReadJson(dir + "/out/manifest.json");
  ASSERT_EQ(m["jobs"].size(), 3u);
  EXPECT_EQ(m["jobs"][0]["status"], "ok");
  EXPECT_EQ(m["jobs"][1]["status"], "failed");
  EXPECT_EQ(m["jobs"][2]["status"], "ok");
  EXPECT_TRUE(fs::exists(dir + "/out/00-saliency/bird_saliency.npy"));
  EXPECT_TRUE(fs::exists(dir + "/out/cam/coffee_gradcam_features.12.npy"));
}

TEST(Cli, TaskFileErrorsNameTheKeyAndItsPosition) {
  const std::string dir = test::TempDir("tasks");
  test::WriteText(dir + "/bad.yaml",
                  "model: m.pt\n"
                  "tasks:\n"
                  "  - technique: gradcam\n"
                  "    image: x.png\n"
                  "    layers: conv\n"
                  "    interpolation: cubic\n");
  const Result r = RunNetlens("run " + dir + "/bad.yaml");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("tasks[0].layers (" + dir + "/bad.yaml:5:5): unknown key \"layers\"; did you mean \"layer\""),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("invalid value \"cubic\"; valid: bilinear, nearest"), std::string::npos) << r.output;
}

TEST(Cli, InspectListsEveryLayerWithShapes) {
  for (const char* file : {"resnet18.traced.pt", "densenet121.scripted.pt"}) {
    const std::string path = test::TestModels() + "/" + file;
    if (!fs::exists(path)) GTEST_SKIP() << "no " << path;
    const Result r = RunNetlens("inspect --json --model " + path);
    ASSERT_EQ(r.code, 0) << r.output;
    const Json info = Json::parse(r.output.substr(r.output.find("{\n")));
    size_t capturable = 0;
    for (const auto& l : info["layers"]) capturable += l["capturable"].get<bool>() && !l["shape"].empty();
    EXPECT_EQ(capturable, info["layers"].size()) << file;
    EXPECT_GT(capturable, 60u);
  }
  const Result r = RunNetlens("inspect --model " + Source("models/fashion_cnn.pt"));
  EXPECT_NE(r.output.find("features.10  Conv2d             conv-4   1x128x7x7"), std::string::npos) << r.output;
}

TEST(Cli, VersionAndList) {
  EXPECT_EQ(RunNetlens("--version").code, 0);
  const Result r = RunNetlens("list");
  EXPECT_EQ(r.code, 0);
  for (const char* t : {"saliency", "guided", "deconvnet", "input-x-gradient", "gradcam", "guided-gradcam"})
    EXPECT_NE(r.output.find(t), std::string::npos) << t;
}

// Every technique of the attribution suite from the command line on a real model (ResNet-20 on
// CIFAR-10 keeps it fast), and all of them again from one task file.
TEST(Cli, EveryTechniqueRunsOnARealModel) {
  RequireShared();
  const std::string dir = test::TempDir("all");
  const std::string common = " --model " + Shared("resnet20_cifar10.scripted.pt") +
                             " --input-size 32 --image " + Shared("images/chelsea.png");
  const std::vector<std::pair<std::string, std::string>> runs{
      {"smoothgrad", "--samples 6 --batch-size 4 --guided"},
      {"integrated-gradients", "--steps 16 --baseline blur"},
      {"occlusion", "--window 8 --stride 4"},
      {"occlusion", "--window 8 --mode probability"},
      {"gradcam++", "--layer layer3,layer2"},
      {"xgradcam", "--layer layer3"},
      {"layercam", "--layer layer2"},
      {"hirescam", "--layer layer3"},
      {"scorecam", "--layer layer3 --batch-size 16"},
      {"ablationcam", "--layer layer3 --batch-size 16"},
      {"eigencam", "--layer layer3"},
      {"layer-gradient", "--layer layer2.0.conv1 --channel 3"},
      {"deconvnet", "--target 3,5"},
      {"input-x-gradient", ""},
      {"feature-ablation", "--segments 16"},
      {"kernel-shap", "--segments 16 --samples 64"},
      {"lime", "--segments 16 --samples 64 --baseline mean"},
      {"gradient-shap", "--samples 8"},
      {"lrp", "--composite epsilon-gamma-box --layer-rules linear=epsilon"},
      {"neuron-conductance", "--layer layer3 --steps 8"},
      {"deeplift", "--baseline blur"},
      {"deeplift-shap", "--batch-size 2"},
  };
  std::string yaml = "model: " + Shared("resnet20_cifar10.scripted.pt") + "\ninput_size: 32\nimage: " +
                     Shared("images/chelsea.png") + "\nout: " + dir + "/batch\ntasks:\n";
  int i = 0;
  for (const auto& [technique, options] : runs) {
    const std::string out = dir + "/" + std::to_string(i++);
    const Result r = RunNetlens(technique + common + " " + options + " --out " + out);
    ASSERT_EQ(r.code, 0) << technique << " " << options << "\n" << r.output;
    const Json job = ReadJson(out + "/manifest.json")["jobs"][0];
    EXPECT_EQ(job["status"], "ok") << technique;
    EXPECT_EQ(job["target"]["label"], "cat") << technique;
    for (const auto& o : job["outputs"]) EXPECT_TRUE(fs::exists(out + "/" + o["path"].get<std::string>()));
    yaml += "  - technique: " + technique + "\n";
    std::vector<std::string> words;
    std::istringstream in(options);
    for (std::string w; in >> w;) words.push_back(w);
    for (size_t k = 0; k < words.size(); ++k) {
      std::string key = words[k].substr(2);
      std::replace(key.begin(), key.end(), '-', '_');
      const bool flag = k + 1 == words.size() || words[k + 1].rfind("--", 0) == 0;
      yaml += "    " + key + ": " + (flag ? std::string("true") : "\"" + words[++k] + "\"") + "\n";
    }
  }
  test::WriteText(dir + "/all.yaml", yaml);
  const Result r = RunNetlens("run " + dir + "/all.yaml");
  ASSERT_EQ(r.code, 0) << yaml << r.output;
  const Json m = ReadJson(dir + "/batch/manifest.json");
  EXPECT_EQ(m["jobs"].size(), runs.size() + 1);  // deconvnet has two targets
  const Json ig = ReadJson(dir + "/1/manifest.json")["jobs"][0];
  EXPECT_LT(ig["metrics"]["completeness"]["relative_delta"].get<double>(), 0.2) << ig["metrics"].dump();
  // ResNet-20 is rectifiers, convolutions, batch norm and sums: DeepLIFT sums to the difference.
  const Json deeplift = ReadJson(dir + "/" + std::to_string(runs.size() - 2) + "/manifest.json")["jobs"][0];
  // float32; on CUDA the sums run in another order and cuDNN convolutions may use TF32 (LibTorch's
  // default): 1.1e-4 was seen on an H200.
  EXPECT_LT(deeplift["metrics"]["summation_to_delta"]["relative_delta"].get<double>(),
            torch::cuda::is_available() ? 1e-3 : 1e-4)
      << deeplift["metrics"].dump();
  // LRP: the input's relevance and what the layers absorb make up the logit; batch norms folded.
  const Json lrp = ReadJson(dir + "/" + std::to_string(runs.size() - 4) + "/manifest.json")["jobs"][0];
  EXPECT_LT(lrp["metrics"]["conservation"]["relative_delta"].get<double>(), 1e-4) << lrp["metrics"].dump();
  EXPECT_EQ(lrp["metrics"]["lrp"]["batch_norms_folded"], 19);
  EXPECT_EQ(lrp["metrics"]["lrp"]["rules"]["zbox"], 1);
}

TEST(Cli, BenchPrintsATableWithRatios) {
  RequireShared();
  const Result r = RunNetlens("bench --model " + Shared("resnet20_cifar10.pt") + " --input-size 32 --image " +
                              Shared("images/cat.png") + " --repeat 1 --only saliency,occlusion,scorecam");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("| technique | options | time ms | floor | floor ms | ratio |"), std::string::npos);
  EXPECT_NE(r.output.find("| occlusion |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("64 fwd in batches of 32"), std::string::npos) << r.output;  // layer3: 64 channels
  // Style: the steps, their updates, and the parts the floor leaves out, each as a row.
  const Result s = RunNetlens("bench --model " + Shared("resnet20_cifar10.pt") + " --image " + Shared("images/cat.png") +
                              " --repeat 1 --only style");
  ASSERT_EQ(s.code, 0) << s.output;
  for (const char* row : {"| style | the same, its steps only", "| style | of its steps, the optimizer's updates (lbfgs)",
                          "| style | its Gram products alone", "| style | L-BFGS's directions alone with a full history of 100 pairs"})
    EXPECT_NE(s.output.find(row), std::string::npos) << row << "\n" << s.output;
}

TEST(Cli, OptionsPageIsCurrent) {
  const Result r = RunNetlens("list --markdown");
  ASSERT_EQ(r.code, 0);
  std::ifstream in(Source("docs/options.md"));
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(r.output, doc) << "regenerate: ./build/netlens list --markdown > docs/options.md";
}

// --- Hardening (issue 11): each of these crashed, ran away or was wrong before. ---

// Elapsed seconds of a command, for "within a second or two" checks (generous bounds: these
// assert "did not run away", not speed).
template <typename F>
double Seconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(Hardening, HostileTaskFilesAreUsageErrorsNotCrashes) {
  const std::string dir = test::TempDir("hostile");
  test::WriteText(dir + "/cycle.yaml", "a: &a [*a]\n");
  test::WriteText(dir + "/deep.json", std::string(100000, '[') + std::string(100000, ']'));
  test::WriteText(dir + "/laughs.yaml", test::BillionLaughsYaml());
  for (const auto& [file, words] : std::vector<std::pair<std::string, std::string>>{
           {"cycle.yaml", "cycle"}, {"deep.json", "nesting deeper than 64"}, {"laughs.yaml", "more than 200000 values"}}) {
    Result r;
    const double seconds = Seconds([&] { r = RunNetlens("run " + dir + "/" + file); });
    EXPECT_EQ(r.code, 2) << file << ": " << r.output.substr(0, 500);
    EXPECT_NE(r.output.find(words), std::string::npos) << file << ": " << r.output.substr(0, 500);
    EXPECT_LT(seconds, 10) << file;
  }
}

TEST(Hardening, HugeImageWithoutResizeIsRefusedWithTheEstimate) {
  RequireShared();
  const std::string dir = test::TempDir("huge");
  const std::string image = dir + "/huge.png";
  {
    cv::Mat big(12000, 12000, CV_8UC3, cv::Scalar(40, 90, 160));
    cv::rectangle(big, {3000, 3000}, {9000, 9000}, cv::Scalar(200, 30, 30), -1);
    ASSERT_TRUE(cv::imwrite(image, big));
  }
  Result r;
  const double seconds = Seconds([&] {
    r = RunNetlens("guided --model " + Shared("squeezenet1_0.pt") + " --image " + image +
                   " --resize none --out " + dir + "/out");
  });
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("12000x12000 needs about"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--resize crop"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--max-pixels"), std::string::npos) << r.output;
  EXPECT_LT(seconds, 30);
  // The remedy works: the same image scaled to 300k pixels runs.
  r = RunNetlens("guided --model " + Shared("squeezenet1_0.pt") + " --image " + image +
                 " --resize none --max-pixels 300000 --out " + dir + "/out");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("scaled to 547x547"), std::string::npos) << r.output;
}

TEST(Hardening, BatchSizesBeyondTheBudgetAreRefusedWithOneThatFits) {
  RequireShared();
  const std::string dir = test::TempDir("batch");
  const Result r = RunNetlens("smoothgrad --model " + Shared("squeezenet1_0.pt") + " --image " +
                              Shared("images/cat.png") + " --samples 64 --batch-size 64 --memory-limit 1G --out " + dir);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--batch-size 64"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fits"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--memory-limit 1G"), std::string::npos) << r.output;
  EXPECT_EQ(RunNetlens("guided --model m.pt --image x.png --memory-limit lots").code, 2);
}

TEST(Hardening, TaskFilePathsAreRelativeToTheFile) {
  const std::string dir = test::TempDir("relative");
  fs::create_directories(dir + "/ci/images");
  fs::copy_file(Source("assets/fashion_mnist/bag.png"), dir + "/ci/images/bag.png");
  fs::copy_file(Source("models/fashion_cnn.pt"), dir + "/ci/model.pt");
  test::WriteText(dir + "/ci/tasks.yaml",
                  "model: model.pt\nout: results\ntasks:\n  - technique: saliency\n    image: images/*.png\n");
  // Run from another folder: the file's paths resolve against ci/.
  Result r = test::Shell("cd " + dir + " && " + test::NetlensBinary() + " run ci/tasks.yaml --quiet");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/ci/results/00-saliency/bag_saliency.npy"));
  // --out on the command line is relative to the current folder.
  r = test::Shell("cd " + dir + " && " + test::NetlensBinary() + " run ci/tasks.yaml --quiet --out here");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/here/00-saliency/bag_saliency.npy"));
}

TEST(Hardening, Float64RunsWriteFloat64Arrays) {
  const std::string dir = test::TempDir("f8");
  const Result r = RunNetlens("saliency --model " + Source("models/fashion_cnn.pt") + " --image " +
                              Source("assets/fashion_mnist/bag.png") + " --dtype float64 --out " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream in(dir + "/bag_saliency.npy", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(bytes.find("'descr': '<f8'"), std::string::npos);
  EXPECT_EQ(bytes.size() % 8, 0u);
}

// --smooth-activations from the command line: on a SiLU network guided backprop says it used
// the generalized rule and differs from the run without the flag, whose warning names the flag.
TEST(Cli, SmoothActivationsFlagReachesTheRules) {
  torch::manual_seed(4);
  torch::jit::Module net("SiluNet", test::SharedUnit(), true);
  net.register_parameter("k", torch::randn({4, 3, 3, 3}), false);
  net.register_parameter("v", torch::randn({3, 4}), false);
  net.define("def forward(self, x):\n    a = torch.silu(torch.conv2d(x, self.k))\n"
             "    return torch.matmul(a.mean([2, 3]), self.v.t())\n");
  const std::string model = test::SaveAndLoad(net, 3, 16, 16, "float32")->path();
  const std::string image = test::SourceDir() + "/assets/content/fruits.jpg";
  const std::string plain = test::TempDir("silu_plain"), smooth = test::TempDir("silu_smooth");
  const Result a = RunNetlens("guided --model " + model + " --image " + image + " --out " + plain);
  ASSERT_EQ(a.code, 0) << a.output;
  EXPECT_NE(a.output.find("--smooth-activations applies"), std::string::npos) << a.output;
  const Result b = RunNetlens("guided --model " + model + " --image " + image + " --smooth-activations --out " + smooth);
  ASSERT_EQ(b.code, 0) << b.output;
  const Json m = Json::parse(std::ifstream(smooth + "/manifest.json"))["jobs"][0]["metrics"]["activations"];
  EXPECT_EQ(m["generalized_kinds"], Json({{"silu", 1}})) << m.dump();
  const torch::Tensor ga = ReadNpyFile(plain + "/fruits_guided.npy", "a", 1e6, "b");
  const torch::Tensor gb = ReadNpyFile(smooth + "/fruits_guided.npy", "b", 1e6, "b");
  EXPECT_FALSE(torch::allclose(ga, gb));
}

// gist on a model without ReLU-like activations: its guided panels take the generalized rule
// (the same map as `guided --smooth-activations`, not the vanilla gradient that plain guided gives
// there), and the manifest says the option was implied; given as false, the plain rule stays.
TEST(Cli, GistImpliesSmoothActivationsWithoutRectifiers) {
  torch::manual_seed(5);
  torch::jit::Module conv("Conv2d", test::SharedUnit(), true);
  conv.register_parameter("weight", torch::randn({4, 3, 3, 3}), false);
  conv.define("def forward(self, x):\n    return torch.conv2d(x, self.weight)\n");
  torch::jit::Module net("SiluNet", test::SharedUnit(), true);
  net.register_module("conv", conv);
  net.register_parameter("v", torch::randn({3, 4}), false);
  net.define("def forward(self, x):\n    a = torch.silu(self.conv.forward(x))\n"
             "    return torch.matmul(a.mean([2, 3]), self.v.t())\n");
  const std::string model = test::SaveAndLoad(net, 3, 32, 32, "float32")->path();
  const std::string base = " --model " + model + " --image " + test::SourceDir() + "/assets/content/fruits.jpg --out ";
  const std::string gist = test::TempDir("gist_silu"), plain_gist = test::TempDir("gist_silu_plain");
  const std::string smooth = test::TempDir("guided_silu_smooth"), plain = test::TempDir("guided_silu_plain");
  for (const auto& [args, dir] : std::vector<std::pair<std::string, std::string>>{
           {"gist", gist}, {"gist --smooth-activations=false", plain_gist},
           {"guided --smooth-activations", smooth}, {"guided", plain}}) {
    const Result r = RunNetlens(args + base + dir);
    ASSERT_EQ(r.code, 0) << args << "\n" << r.output;
    if (dir == gist) EXPECT_NE(r.output.find("--smooth-activations implied"), std::string::npos) << r.output;
  }
  const Json m = Json::parse(std::ifstream(gist + "/manifest.json"))["jobs"][0]["metrics"]["activations"];
  EXPECT_EQ(m["generalized_kinds"], Json({{"silu", 1}})) << m.dump();
  EXPECT_EQ(m["implied_smooth_activations"], true) << m.dump();
  const Json mp = Json::parse(std::ifstream(plain_gist + "/manifest.json"))["jobs"][0]["metrics"]["activations"];
  EXPECT_EQ(mp["left_kinds"], Json({{"silu", 1}})) << mp.dump();
  EXPECT_FALSE(mp.contains("implied_smooth_activations")) << mp.dump();
  const torch::Tensor g = ReadNpyFile(gist + "/fruits_guided.npy", "g", 1e6, "g");
  const torch::Tensor gp = ReadNpyFile(plain_gist + "/fruits_guided.npy", "gp", 1e6, "gp");
  const torch::Tensor s = ReadNpyFile(smooth + "/fruits_guided.npy", "s", 1e6, "s");
  const torch::Tensor v = ReadNpyFile(plain + "/fruits_guided.npy", "v", 1e6, "v");
  EXPECT_TRUE(torch::allclose(g, s, 1e-5, 1e-7));
  EXPECT_TRUE(torch::allclose(gp, v, 1e-5, 1e-7));
  EXPECT_FALSE(torch::allclose(g, v, 1e-3, 1e-6));
}

TEST(Hardening, VersionNamesTheBlasInUse) {
  const Result r = RunNetlens("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("BLAS: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("LibTorch "), std::string::npos) << r.output;
  // Built where Debian's OpenMP OpenBLAS is installed, netlens loads it before the system's
  // alternative (whose pthread build competes with LibTorch's threads).
  if (fs::exists(test::BlasDir() + "/libblas.so.3")) {
    EXPECT_NE(r.output.find("OpenMP threads from " + test::BlasDir()), std::string::npos) << r.output;
  }
}

TEST(Hardening, OcclusionProbabilityRendersTheDrop) {
  RequireShared();
  const std::string dir = test::TempDir("drop");
  const Result r = RunNetlens("occlusion --model " + Shared("resnet20_cifar10.scripted.pt") + " --image " +
                              Shared("images/bird.png") + " --input-size 32 --mode probability --window 8 --out " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/bird_occlusion_drop_heatmap.png"));
  EXPECT_TRUE(fs::exists(dir + "/bird_occlusion_probability.npy"));
  EXPECT_FALSE(fs::exists(dir + "/bird_occlusion_probability_heatmap.png"));
  // The batched forwards ran through the frozen, inference-optimized copy of the scripted
  // ResNet (its blocks are submodule calls that freezing must inline all the way down).
  std::ifstream log(dir + "/netlens.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("freeze and optimize the model for batched inference done"), std::string::npos) << text;
  EXPECT_EQ(text.find("frozen module failed"), std::string::npos) << text;
  EXPECT_EQ(text.find("freezing failed"), std::string::npos) << text;
}

}  // namespace
}  // namespace netlens
