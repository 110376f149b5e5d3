// gist, factorize and report.html end to end on the real SqueezeNet in ../shared/models; the
// report is opened in headless Chromium (tests/report/browser.h) and used like a person would:
// no console errors, no network, a click on "next layer" and the arrow keys change the layer
// shown, the failed job's error is on its tab, and the screenshot shows the page.
#include <gif_lib.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <fstream>
#include <sstream>

#include "netlens/core/options.h"
#include "tests/report/browser.h"
#include "tests/test_util.h"

namespace netlens {
namespace {
namespace fs = std::filesystem;

std::string Shared(const std::string& file) { return test::SharedModels() + "/" + file; }
test::ShellResult RunNetlens(const std::string& args) {
  return test::Shell(test::NetlensBinary() + " " + args);
}
Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return Json::parse(in);
}

int GifFrames(const std::string& path) {
  int error = 0;
  GifFileType* gif = DGifOpenFileName(path.c_str(), &error);
  if (!gif) return -1;
  const int frames = DGifSlurp(gif) == GIF_OK ? gif->ImageCount : -1;
  DGifCloseFile(gif, &error);
  return frames;
}

class Report : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Shared("squeezenet1_0.pt"))) GTEST_SKIP() << "no shared models";
  }
};

// The browser is part of the test setup (tools/setup.sh installs Debian's chromium); without it
// the test fails unless NETLENS_SKIP_BROWSER=1 says that is expected.
std::string ChromiumOrSkip() {
  const std::string exe = test::FindChromium();
  if (exe.empty() && std::getenv("NETLENS_SKIP_BROWSER")) return "";
  EXPECT_FALSE(exe.empty()) << "no chromium on PATH (tools/setup.sh installs it; NETLENS_SKIP_BROWSER=1 skips)";
  return exe;
}

TEST_F(Report, GistWritesFigureAnimationGroupsAndTimings) {
  const std::string out = test::TempDir("out");
  const auto r = RunNetlens("gist --model " + Shared("squeezenet1_0.pt") + " --image " + Shared("images/cat.png") +
                            " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("report: " + fs::absolute(out).string() + "/report.html"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("factorizing spatial activations"), std::string::npos);
  const Json m = ReadJson(out + "/manifest.json");
  const Json& job = m["jobs"][0];
  // Six convolutions spread evenly in forward order, first and last included.
  const Json& layers = job["metrics"]["layers"];
  ASSERT_EQ(layers.size(), 6u);
  EXPECT_EQ(layers[0]["layer"], "features.0");
  EXPECT_EQ(layers[5]["layer"], "classifier.1");
  for (const auto& l : layers) EXPECT_EQ(l["top_channels"].size(), 4u);
  EXPECT_EQ(job["metrics"]["groups"]["layer"], "classifier.1");
  EXPECT_LT(job["metrics"]["groups"]["reconstruction_error"].get<double>(), 1.0);
  EXPECT_TRUE(job["metrics"]["timings_ms"].contains("layers_pass"));
  const cv::Mat figure = cv::imread(out + "/cat_gist.png");
  ASSERT_FALSE(figure.empty());
  EXPECT_GT(figure.rows, 7 * 160);  // header + 6 layer rows
  EXPECT_EQ(GifFrames(out + "/cat_layers.gif"), 6);
  for (const char* f : {"cat_guided.npy", "cat_integrated_gradients.npy", "cat_occlusion.npy",
                        "cat_gradcam_features.0.npy", "cat_guided_gradcam_classifier.1_heatmap.png",
                        "cat_activation_features.0_heatmap.png", "cat_groups_classifier.1.png", "report.html"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
}

TEST_F(Report, GistRefusesALayerWithoutSpatialOutputNamingTheOnesItTakes) {
  const std::string out = test::TempDir("out");
  const auto r = RunNetlens("gist --model " + Shared("squeezenet1_0.pt") + " --image " + Shared("images/cat.png") +
                            " --layers features.3,classifier.3 --out " + out);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("classifier.3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("features.0, "), std::string::npos) << r.output;
}

TEST_F(Report, FactorizeFindsGroupsWithFigureAndVisualizations) {
  const std::string out = test::TempDir("out");
  const auto r = RunNetlens("factorize --model " + Shared("squeezenet1_0.pt") + " --image " + Shared("images/cat.png") +
                            " --layer features.12 --groups 4 --visualize-steps 8 --visualize-size 48 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const Json job = ReadJson(out + "/manifest.json")["jobs"][0];
  EXPECT_EQ(job["metrics"]["groups"].size(), 4u);
  EXPECT_TRUE(fs::exists(out + "/cat_factorize_features.12.png"));
  EXPECT_TRUE(fs::exists(out + "/cat_group_featurevis_features.12_grid.png"));
  EXPECT_TRUE(fs::exists(out + "/cat_group3_features.12_heatmap.png"));
}

TEST_F(Report, WithoutManifestIsAUsageErrorWithTheRemedy) {
  const std::string dir = test::TempDir("empty");
  const auto r = RunNetlens("report " + dir);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("no manifest.json"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/report.html"));
}

TEST_F(Report, FlipsThroughLayersInTheBrowserAndShowsTheFailedJob) {
  const std::string exe = ChromiumOrSkip();
  if (exe.empty()) GTEST_SKIP() << "NETLENS_SKIP_BROWSER set and no chromium";
  const std::string dir = test::TempDir("run");
  test::WriteText(dir + "/tasks.yaml",
                  "model: " + Shared("squeezenet1_0.pt") + "\nout: " + dir + "/out\nreport: true\n"
                  "tasks:\n"
                  "  - technique: gist\n    image: " + Shared("images/cat.png") + "\n"
                  "    layers: [features.3, features.7, features.12]\n    occlusion_grid: 0\n    groups: 0\n"
                  "  - technique: saliency\n    image: " + Shared("images/cat.png") + "\n    target: \"5000\"\n"
                  "  - technique: evaluate\n    image: " + Shared("images/bird.png") + "\n"
                  "    techniques: [saliency, gradcam]\n    metric: [deletion]\n    steps: 4\n");
  const auto r = RunNetlens("run " + dir + "/tasks.yaml --quiet");
  ASSERT_EQ(r.code, 1) << r.output;  // one job failed, the other went on
  const std::string report = dir + "/out/report.html";
  ASSERT_TRUE(fs::exists(report)) << r.output;

  test::Browser browser(exe, dir + "/profile");
  test::Page page(browser);
  page.Open(report);
  const std::string viewer = ".viewer[data-artifact=\"gradcam\"]";
  auto layer = [&] { return page.Eval("document.querySelector('" + viewer + " .layer-name').textContent").get<std::string>(); };
  auto src = [&] { return page.Eval("document.querySelector('" + viewer + " img').src").get<std::string>(); };
  ASSERT_EQ(page.Eval("document.querySelectorAll('" + viewer + "').length").get<int>(), 1);
  EXPECT_EQ(layer(), "features.3");
  const std::string first = src();
  page.Click(viewer + " .next");
  EXPECT_EQ(layer(), "features.7");
  EXPECT_NE(src(), first);
  page.PressKey("ArrowRight", 39);
  EXPECT_EQ(layer(), "features.12");
  page.PressKey("ArrowRight", 39);  // stays at the last layer
  EXPECT_EQ(layer(), "features.12");
  page.PressKey("ArrowLeft", 37);
  EXPECT_EQ(layer(), "features.7");
  EXPECT_EQ(page.Eval("document.querySelector('" + viewer + " .layer-pos').textContent").get<std::string>(), "2 / 3");
  // The job's other layer-wise results follow.
  EXPECT_EQ(page.Eval("document.querySelector('.viewer[data-artifact=\"guided_gradcam\"] .layer-name').textContent")
                .get<std::string>(), "features.7");
  // Every picture decoded.
  EXPECT_TRUE(page.Eval("Array.from(document.images).every(function(i){return i.complete && i.naturalWidth > 0;})").get<bool>());
  const std::string shot = page.Screenshot();
  const cv::Mat png = cv::imdecode(std::vector<unsigned char>(shot.begin(), shot.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(png.empty());
  cv::Scalar mean, stddev;
  cv::meanStdDev(png, mean, stddev);
  EXPECT_GT(stddev[0], 20) << "the screenshot is nearly uniform";
  if (const char* keep = std::getenv("NETLENS_SCREENSHOTS")) {
    std::ofstream(std::string(keep) + "/report_gist.png", std::ios::binary) << shot;
  }
  // The evaluate job's scores: a ranking table at the top of the page, and scores.csv.
  EXPECT_EQ(page.Eval("document.querySelectorAll('table.scores tr').length").get<int>(), 2);
  EXPECT_NE(page.Eval("document.querySelector('table.scores').textContent").get<std::string>().find("deletion"),
            std::string::npos);
  EXPECT_TRUE(fs::exists(dir + "/out/scores.csv"));
  // The failed job: its own tab, its error.
  page.Click(".tab.failed");
  const std::string error = page.Eval("document.querySelector('.error').textContent").get<std::string>();
  EXPECT_NE(error.find("5000"), std::string::npos) << error;
  if (const char* keep = std::getenv("NETLENS_SCREENSHOTS")) {
    const std::string s = page.Screenshot();
    std::ofstream(std::string(keep) + "/report_failed.png", std::ios::binary) << s;
  }
  EXPECT_TRUE(page.Errors().empty()) << page.Errors()[0];
  EXPECT_TRUE(page.NetworkRequests().empty()) << page.NetworkRequests()[0];
}

TEST_F(Report, LinkedPicturesLoadFromBesideThePage) {
  const std::string exe = ChromiumOrSkip();
  if (exe.empty()) GTEST_SKIP() << "NETLENS_SKIP_BROWSER set and no chromium";
  const std::string out = test::TempDir("out");
  ASSERT_EQ(RunNetlens("gradcam --model " + Shared("squeezenet1_0.pt") + " --image " + Shared("images/cat.png") +
                       " --layer features.3,features.12 --out " + out).code, 0);
  const auto r = RunNetlens("report " + out + " --embed never");
  ASSERT_EQ(r.code, 0) << r.output;
  test::Browser browser(exe, test::TempDir("profile"));
  test::Page page(browser);
  page.Open(out + "/report.html");
  const Json srcs = page.Eval("Array.from(document.querySelectorAll('.viewer img')).map(function(i){return i.src;})");
  ASSERT_FALSE(srcs.empty());
  for (const auto& s : srcs) EXPECT_EQ(s.get<std::string>().rfind("file:", 0), 0u) << s;
  EXPECT_TRUE(page.Eval("Array.from(document.images).every(function(i){return i.complete && i.naturalWidth > 0;})").get<bool>());
  EXPECT_TRUE(page.Errors().empty()) << page.Errors()[0];
}

// A 1,000-job batch: the pictures are linked (not embedded), the index is paged, only the
// selected input's pictures are in the page, and failed jobs can be listed alone.
TEST_F(Report, ThousandJobBatchIsPagedAndLinked) {
  const std::string exe = ChromiumOrSkip();
  if (exe.empty()) GTEST_SKIP() << "NETLENS_SKIP_BROWSER set and no chromium";
  const std::string out = test::TempDir("out");
  ASSERT_EQ(RunNetlens("gradcam --model " + Shared("squeezenet1_0.pt") + " --image " + Shared("images/cat.png") +
                       " --layer features.3,features.12 --out " + out).code, 0);
  Json m = ReadJson(out + "/manifest.json");
  const Json job = m["jobs"][0];
  m["jobs"] = Json::array();
  for (int i = 0; i < 1000; ++i) {
    Json j = job;
    char name[32];
    std::snprintf(name, sizeof(name), "photo%04d.png", i);
    j["image"] = name;
    if (i % 100 == 7) j = {{"status", "failed"}, {"technique", "gradcam"}, {"image", name}, {"error", "broken"}};
    m["jobs"].push_back(j);
  }
  std::ofstream(out + "/manifest.json") << m.dump();
  const auto r = RunNetlens("report " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("linking them"), std::string::npos) << r.output;
  EXPECT_LT(fs::file_size(out + "/report.html"), 20u << 20);
  test::Browser browser(exe, test::TempDir("profile"));
  test::Page page(browser);
  page.Open(out + "/report.html");
  EXPECT_EQ(page.Eval("document.querySelectorAll('#sections li').length").get<int>(), 200);
  EXPECT_NE(page.Eval("document.getElementById('pager').textContent").get<std::string>().find("page 1 / 5"),
            std::string::npos);
  EXPECT_LT(page.Eval("document.images.length").get<int>(), 10);
  page.Click("#pager button:last-child");
  EXPECT_EQ(page.Eval("document.querySelector('#sections li').firstChild.textContent").get<std::string>(), "photo0200.png");
  page.Click("#failed-only");
  EXPECT_EQ(page.Eval("document.querySelectorAll('#sections li').length").get<int>(), 10);
  page.Click("#sections li");
  EXPECT_EQ(page.Eval("document.querySelector('.error').textContent").get<std::string>(), "failed: broken");
  EXPECT_TRUE(page.Errors().empty()) << page.Errors()[0];
}

}  // namespace
}  // namespace netlens
