// Task files at scale: a 200-job batch with two broken jobs, shards that add up to the single
// run (sequentially and under GNU parallel), --skip-existing, --dry-run, progress lines.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "netlens/core/options.h"
#include "tests/test_util.h"

namespace netlens {
namespace {

namespace fs = std::filesystem;
using Result = test::ShellResult;
using test::Shell;


std::string Netlens() { return test::NetlensBinary(); }

Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return Json::parse(in);
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// 25 tasks x 8 photos on ResNet-20; in the last two tasks one image is missing or corrupt.
std::string WriteBigTaskFile(const std::string& dir) {
  const std::string shared = test::SharedModels();
  test::WriteText(dir + "/corrupt.png", "\x89PNG not really");
  std::vector<std::string> photos;
  for (const char* p : {"cat", "grace_hopper", "bird", "dragonfly", "chelsea", "coffee", "astronaut", "rocket"})
    photos.push_back(shared + "/images/" + p + ".png");
  std::ostringstream y;
  y << "model: " << shared << "/resnet20_cifar10.scripted.pt\ninput_size: 32\nout: " << dir << "/out\ntasks:\n";
  const std::vector<std::string> techniques{"saliency", "guided", "deconvnet", "input-x-gradient", "gradcam",
                                            "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam"};
  for (int t = 0; t < 25; ++t) {
    const std::string& technique = techniques[t % techniques.size()];
    y << "  - technique: " << technique << "\n    name: t" << t << "\n    target: " << (t % 10) << "\n";
    if (technique.find("cam") != std::string::npos) y << "    layer: " << (t % 2 ? "layer3" : "layer2") << "\n";
    if (t < 23) {
      y << "    image: " << shared << "/images/*.png\n";  // the 8 photos (the style images are .jpg)
    } else {
      y << "    image:\n";
      for (int i = 0; i < 7; ++i) y << "      - " << photos[i] << "\n";
      y << "      - " << (t == 23 ? dir + "/missing.png" : dir + "/corrupt.png") << "\n";
    }
  }
  test::WriteText(dir + "/big.yaml", y.str());
  return dir + "/big.yaml";
}

// ok jobs of one or several manifests: "task|image|target" -> raw output bytes.
std::map<std::string, std::string> OkJobs(const std::string& out, const std::vector<std::string>& manifests,
                                          int* duplicates) {
  std::map<std::string, std::string> jobs;
  for (const auto& name : manifests) {
    const Json manifest = ReadJson(out + "/" + name);
    for (const auto& j : manifest["jobs"]) {
      if (j["status"] != "ok") continue;
      // Jobs without an image (featurevis) or a target (deepdream, invert) have neither key.
      const std::string key = j["task"].get<std::string>() + "|" + j.value("image", std::string()) + "|" +
                              (j.contains("target") ? std::to_string(j["target"]["index"].get<int64_t>()) : "");
      std::string bytes;
      for (const auto& o : j["outputs"]) {
        EXPECT_TRUE(fs::exists(out + "/" + o["path"].get<std::string>())) << o.dump();
        if (o["kind"] == "raw") bytes += ReadBytes(out + "/" + o["path"].get<std::string>());
      }
      if (jobs.count(key) && duplicates) ++*duplicates;
      jobs[key] = bytes;
    }
  }
  return jobs;
}

class Batch : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::SharedModels() + "/resnet20_cifar10.scripted.pt")) GTEST_SKIP() << "no shared models";
  }
};

TEST_F(Batch, TwoHundredJobsWithTwoBrokenOnesThenShardsAndSkipExisting) {
  const std::string dir = test::TempDir("big");
  const std::string file = WriteBigTaskFile(dir);
  Result r = Shell(Netlens() + " run " + file + " --dry-run");
  EXPECT_EQ(r.code, 2) << r.output;  // dry-run sees both broken images up front
  EXPECT_NE(r.output.find("tasks[23].image"), std::string::npos) << r.output;

  r = Shell(Netlens() + " run " + file + " --progress json");
  EXPECT_EQ(r.code, 1) << r.output.substr(0, 2000);
  const Json single = ReadJson(dir + "/out/manifest.json");
  EXPECT_EQ(single["summary"]["ok"], 198);
  EXPECT_EQ(single["summary"]["failed"], 2);
  size_t lines = 0;
  for (std::istringstream in(r.output); std::getline(in, r.output);)
    if (r.output.rfind("{\"done\":", 0) == 0) ++lines;
  EXPECT_EQ(lines, 200u);
  int dup = 0;
  const auto want = OkJobs(dir + "/out", {"manifest.json"}, &dup);
  EXPECT_EQ(want.size(), 198u);

  // Four shards into another folder: same jobs, same bytes, none twice.
  for (int k = 1; k <= 4; ++k) {
    r = Shell(Netlens() + " run " + file + " --quiet --shard " + std::to_string(k) + "/4 --out " + dir + "/sharded");
    EXPECT_TRUE(r.code == 0 || r.code == 1) << r.output;
  }
  std::vector<std::string> names;
  for (int k = 1; k <= 4; ++k) names.push_back("manifest.shard-" + std::to_string(k) + "-of-4.json");
  dup = 0;
  EXPECT_EQ(OkJobs(dir + "/sharded", names, &dup), want);
  EXPECT_EQ(dup, 0);

  // A re-run skips everything that is complete and retries the two broken jobs.
  r = Shell(Netlens() + " run " + file + " --skip-existing --quiet");
  EXPECT_EQ(r.code, 1);
  const Json again = ReadJson(dir + "/out/manifest.json");
  EXPECT_EQ(again["summary"]["skipped"], 198);
  EXPECT_EQ(again["summary"]["failed"], 2);
}

TEST_F(Batch, GnuParallelThreeShardsEqualOneRun) {
  if (Shell("command -v parallel").code != 0) GTEST_SKIP() << "GNU parallel is not installed";
  const std::string dir = test::TempDir("parallel");
  const std::string shared = test::SharedModels();
  test::WriteText(dir + "/p.json",
                  "{\"model\": \"" + shared + "/resnet20_cifar10.pt\", \"input_size\": 32, \"out\": \"" + dir +
                      "/one\", \"tasks\": [{\"technique\": \"saliency\", \"image\": \"" + shared +
                      "/images/*.png\"}, {\"technique\": \"gradcam\", \"layer\": \"layer3\", \"image\": \"" + shared +
                      "/images\"}]}");
  ASSERT_EQ(Shell(Netlens() + " run " + dir + "/p.json --quiet").code, 0);
  const Result r = Shell("parallel --will-cite " + Netlens() + " run " + dir + "/p.json --quiet --out " + dir +
                         "/many --shard {}/3 ::: 1 2 3");
  ASSERT_EQ(r.code, 0) << r.output;
  int dup = 0;
  const auto one = OkJobs(dir + "/one", {"manifest.json"}, nullptr);
  EXPECT_EQ(one.size(), 18u);  // 8 photos by glob; the folder also holds the 2 style .jpg images
  EXPECT_EQ(OkJobs(dir + "/many", {"manifest.shard-1-of-3.json", "manifest.shard-2-of-3.json",
                                   "manifest.shard-3-of-3.json"}, &dup), one);
  EXPECT_EQ(dup, 0);
}

TEST_F(Batch, DryRunReportsEveryProblemWithItsPosition) {
  const std::string dir = test::TempDir("dry");
  const std::string shared = test::SharedModels();
  test::WriteText(dir + "/d.yaml", "model: " + shared + "/resnet20_cifar10.pt\ninput_size: 32\ntasks:\n"
                  "  - technique: gradcam\n    image: " + shared + "/images/cat.png\n    layer: layer9\n"
                  "  - technique: saliency\n    image: " + dir + "/nope/*.png\n"
                  "  - technique: guided\n    model: " + dir + "/missing.pt\n    image: " + shared + "/images/cat.png\n");
  const Result r = Shell(Netlens() + " run " + dir + "/d.yaml --dry-run");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("tasks[0].layer (" + dir + "/d.yaml:6:5): unknown layer \"layer9\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tasks[1].image (" + dir + "/d.yaml:8:5)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tasks[2].model"), std::string::npos) << r.output;
}

// Every example in configs/ runs on the real models and writes every output it lists.
TEST_F(Batch, EveryExampleConfigRuns) {
  const std::string src = test::SourceDir();
  int count = 0;
  for (const auto& e : fs::directory_iterator(src + "/configs")) {
    const std::string name = e.path().filename().string();
    const std::string out = test::TempDir(name);
    const Result r = Shell("cd " + src + " && " + Netlens() + " run configs/" + name + " --quiet --out " + out);
    EXPECT_EQ(r.code, 0) << name << "\n" << r.output;
    const Json m = ReadJson(out + "/manifest.json");
    EXPECT_EQ(m["summary"]["failed"], 0) << name;
    EXPECT_GT(m["summary"]["ok"].get<int>(), 0) << name;
    OkJobs(out, {"manifest.json"}, nullptr);  // asserts every output exists
    ++count;
  }
  EXPECT_GE(count, 4);
}

TEST(Schema, ValidatesEveryConfigAndRejectsABadOne) {
  const std::string src = test::SourceDir();
  const std::string schema = test::TempDir("schema") + "/schema.json";
  const Result r = Shell("cd " + src + " && " + Netlens() + " schema > " + schema +
                         " && /usr/bin/python3 tools/validate_configs.py " + schema + " configs/*");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("configs/demo.yaml: valid"), std::string::npos) << r.output;
  const std::string dir = test::TempDir("bad");
  test::WriteText(dir + "/bad.yaml", "model: m.pt\ntasks:\n  - technique: gradcam\n    layers: x\n");
  const Result bad = Shell("cd " + src + " && " + Netlens() + " schema > " + dir + "/schema.json && "
                           "/usr/bin/python3 tools/validate_configs.py " + dir + "/schema.json " + dir + "/bad.yaml");
  EXPECT_EQ(bad.code, 1) << bad.output;
}

}  // namespace
}  // namespace netlens
