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
#include "netlens/image/npy.h"
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
using JobOutputs = std::map<std::string, std::string>;
JobOutputs OkJobs(const std::string& out, const std::vector<std::string>& manifests,
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
      jobs[key] = bytes;  // the .npy files one after another
    }
  }
  return jobs;
}

// The same jobs with the same raw arrays: equal where both runs computed an image in the same
// batch; within float32 rounding (1e-5 relative) where the batches differ (a shard batches other
// images together, and a convolution's float32 sums may then be added in another order).
void ExpectSameJobs(const JobOutputs& got, const JobOutputs& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [key, bytes] : want) {
    auto it = got.find(key);
    ASSERT_NE(it, got.end()) << key;
    if (it->second == bytes) continue;
    // Split the concatenated .npy files at their magic strings and compare them as arrays.
    const auto split = [](const std::string& all) {
      std::vector<torch::Tensor> arrays;
      const std::string magic = "\x93NUMPY";
      for (size_t at = all.find(magic); at != std::string::npos;) {
        const size_t next = all.find(magic, at + 1);
        arrays.push_back(ParseNpy(all.substr(at, next == std::string::npos ? std::string::npos : next - at)));
        at = next;
      }
      return arrays;
    };
    const auto a = split(it->second), b = split(bytes);
    ASSERT_EQ(a.size(), b.size()) << key;
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(test::AllClose(a[i], b[i], 1e-5, 1e-6 * b[i].abs().max().item<double>())) << key << " array " << i;
  }
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
  ExpectSameJobs(OkJobs(dir + "/sharded", names, &dup), want);
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
  ExpectSameJobs(OkJobs(dir + "/many", {"manifest.shard-1-of-3.json", "manifest.shard-2-of-3.json",
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

// Batched jobs (issue 37): the jobs of a folder that differ only in their image run as one pass
// per batch. For every batched technique on the bundled Fashion-MNIST CNN in float64, each image's
// raw maps equal a run one image at a time to 1e-12, with each image's own top class or one fixed
// class; a corrupt file in the folder fails its job alone, and the manifest says how each image ran.
TEST(BatchedJobs, EqualOneImageAtATimeAndACorruptImageFailsAlone) {
  const std::string dir = test::TempDir("batched");
  fs::create_directories(dir + "/images");
  for (const auto& entry : fs::directory_iterator(test::SourceDir() + "/assets/fashion_mnist"))
    fs::copy_file(entry.path(), dir + "/images/" + entry.path().filename().string());
  test::WriteText(dir + "/images/corrupt.png", "\x89PNG not really");
  const std::string model = test::SourceDir() + "/models/fashion_cnn.pt";
  std::vector<std::pair<std::string, std::string>> runs;  // technique, target option
  for (const char* technique : {"saliency", "guided", "deconvnet", "input-x-gradient", "gradcam", "gradcam++",
                                "xgradcam", "layercam", "hirescam"})
    runs.emplace_back(technique, "");
  runs.emplace_back("saliency", " --target 3");  // one fixed class, for a gradient map and a CAM
  runs.emplace_back("gradcam", " --target 3");
  for (const auto& [technique, target] : runs) {
    {
      const std::string what = technique + target;
      const std::string common = " " + technique + " --model " + model + " --image " + dir + "/images --dtype float64 --log-level warn" + target;
      const Result batched = Shell(Netlens() + common + " --out " + dir + "/batched");
      const Result single = Shell(Netlens() + common + " --batch-images 1 --out " + dir + "/single");
      EXPECT_EQ(batched.code, 1) << what << batched.output;  // the corrupt image
      EXPECT_EQ(single.code, 1) << what << single.output;
      const Json manifest = ReadJson(dir + "/batched/manifest.json");
      EXPECT_EQ(manifest["summary"]["ok"], 10) << what;
      EXPECT_EQ(manifest["summary"]["failed"], 1) << what;
      int rows = 0;
      for (const auto& job : manifest["jobs"]) {
        if (job["status"] != "ok") {
          EXPECT_NE(job["image"].get<std::string>().find("corrupt.png"), std::string::npos) << job.dump();
          continue;
        }
        EXPECT_EQ(job["batch"]["images"], 10) << what;
        rows += job["batch"]["row"].get<int>();
        if (!target.empty()) EXPECT_EQ(job["target"]["index"], 3) << what;
        else EXPECT_EQ(job["target"]["index"], job["predictions"][0]["index"]) << what;
        for (const auto& o : job["outputs"]) {
          if (o["kind"] != "raw") continue;
          const std::string path = o["path"].get<std::string>();
          const torch::Tensor a = ParseNpy(ReadBytes(dir + "/batched/" + path));
          const torch::Tensor b = ParseNpy(ReadBytes(dir + "/single/" + path));
          EXPECT_EQ(a.sizes(), b.sizes()) << what << " " << path;
          EXPECT_TRUE(test::AllClose(a, b, 1e-12, 1e-12)) << what << " " << path;
          EXPECT_EQ(a.size(0), 1) << what << " " << path;
        }
      }
      EXPECT_EQ(rows, 45) << what;  // rows 0..9, each image once
      fs::remove_all(dir + "/batched");
      fs::remove_all(dir + "/single");
    }
  }
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
