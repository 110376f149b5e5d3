// The bad-input corpus (issue 11): over 500 generated hostile inputs — mutated task files,
// truncated and corrupt images and models, models that are not image classifiers — each run
// through the real binary. Every run must end with exit code 0, 1 or 2 (never a signal), within
// a time limit, with an error message when it fails, and without a partial (temporary) file.
//
// Runs use the bundled Fashion-MNIST model (28x28) and 16x16 models written here, so the whole
// corpus costs a few minutes of CPU.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace netlens {
namespace {

namespace fs = std::filesystem;

constexpr int kTimeLimitSeconds = 60;

std::string Source(const std::string& file) { return test::SourceDir() + "/" + file; }

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Runs one netlens command line; checks exit code, time limit, message and files. Returns the
// exit code (or -1 after a failed expectation) so that callers can count outcomes.
int Check(const std::string& what, const std::string& args, const std::string& out) {
  const test::ShellResult r = test::Shell("timeout -s KILL " + std::to_string(kTimeLimitSeconds) +
                                          " " + test::NetlensBinary() + " " + args);
  EXPECT_TRUE(r.code == 0 || r.code == 1 || r.code == 2)
      << what << ": exit " << r.code << " (a signal or the time limit)\n" << r.output.substr(0, 2000);
  if (r.code == 1 || r.code == 2)
    EXPECT_NE(r.output.find("error"), std::string::npos) << what << ": failed without a message";
  EXPECT_FALSE(test::HasTempFiles(out)) << what << ": left a temporary file";
  return (r.code >= 0 && r.code <= 2) ? r.code : -1;
}

// Seeded mutations of `bytes`: flips, deletions, insertions of structural characters,
// truncation, duplication of a slice.
std::string Mutate(const std::string& bytes, std::mt19937& rng) {
  std::string s = bytes;
  const char structural[] = "[]{}:,-&*!|>'\"\n #%@`\\\t\x00\xff";
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    const size_t at = rng() % s.size();
    switch (rng() % 6) {
      case 0: s[at] = static_cast<char>(rng() & 0xff); break;
      case 1: s.erase(at, 1 + rng() % 8); break;
      case 2: s.insert(at, 1, structural[rng() % (sizeof(structural) - 1)]); break;
      case 3: s.resize(at); break;
      case 4: s.insert(at, s.substr(at, std::min<size_t>(64, s.size() - at))); break;
      default: s[at] = structural[rng() % (sizeof(structural) - 1)]; break;
    }
  }
  return s;
}

class Corpus : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::TempDir("corpus");
    out_ = dir_ + "/out";
    model_ = Source("models/fashion_cnn.pt");
    image_ = Source("assets/fashion_mnist/ankle_boot.png");
    ASSERT_TRUE(fs::exists(model_));
  }
  std::string dir_, out_, model_, image_;
};

// A task file that exercises every kind of key, on the bundled model; the seed for mutations.
std::string BaseTaskFile(const std::string& model, const std::string& image) {
  return "model: " + model + "\n"
         "out: out\n"
         "device: cpu\n"
         "tasks:\n"
         "  - technique: saliency\n"
         "    image: [" + image + "]\n"
         "    target: top2\n"
         "  - technique: gradcam\n"
         "    image: " + image + "\n"
         "    layer: [last-conv, conv-1]\n"
         "  - technique: occlusion\n"
         "    image: " + image + "\n"
         "    window: 14\n"
         "    stride: 7\n"
         "  - technique: smoothgrad\n"
         "    image: " + image + "\n"
         "    samples: 4\n"
         "    batch_size: 2\n";
}

TEST_F(Corpus, MutatedTaskFiles) {
  std::mt19937 rng(11);
  const std::string yaml = BaseTaskFile(model_, image_);
  const Json as_json = {{"model", model_}, {"out", "out"}, {"device", "cpu"},
                        {"tasks", {{{"technique", "guided"}, {"image", image_}},
                                   {{"technique", "integrated-gradients"}, {"image", image_}, {"steps", 4}}}}};
  std::vector<std::pair<std::string, std::string>> files;  // name, text
  for (int i = 0; i < 180; ++i) files.emplace_back("m" + std::to_string(i) + ".yaml", Mutate(yaml, rng));
  for (int i = 0; i < 100; ++i)
    files.emplace_back("m" + std::to_string(i) + ".json", Mutate(as_json.dump(1), rng));
  // The hostile classics.
  files.emplace_back("cycle.yaml", "a: &a [*a]\ntasks: *a\n");
  files.emplace_back("deep.json", std::string(100000, '[') + std::string(100000, ']'));
  files.emplace_back("deep.yaml", std::string(100000, '[') + std::string(100000, ']'));
  files.emplace_back("laughs.yaml", test::BillionLaughsYaml() + "tasks: *a9\n");
  files.emplace_back("empty.yaml", "");
  files.emplace_back("binary.json", std::string("\x00\x01\x02\xff\xfe", 5));
  files.emplace_back("tasks_scalar.yaml", "model: m.pt\ntasks: 5\n");
  files.emplace_back("huge_number.yaml", "model: " + model_ + "\ntasks:\n  - technique: smoothgrad\n    image: " +
                                             image_ + "\n    samples: 1e400\n");
  int codes[3] = {0, 0, 0};
  for (const auto& [name, text] : files) {
    const std::string path = dir_ + "/" + name;
    WriteBytes(path, text);
    const int code = Check(name, "run " + path + " --quiet", dir_);
    if (code >= 0) ++codes[code];
  }
  EXPECT_GE(files.size(), 285u);
  // The corpus must mostly be rejected, but some mutations stay valid and run.
  EXPECT_GT(codes[2], 100) << codes[0] << " ok, " << codes[1] << " failed, " << codes[2] << " usage";
}

TEST_F(Corpus, TruncatedAndCorruptImages) {
  std::mt19937 rng(12);
  std::vector<std::string> sources;
  for (const auto& e : fs::directory_iterator(Source("assets/fashion_mnist"))) sources.push_back(e.path().string());
  std::sort(sources.begin(), sources.end());
  int n = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string bytes = ReadBytes(sources[i % sources.size()]);
    std::string bad;
    if (i % 3 == 0) bad = bytes.substr(0, rng() % bytes.size());  // truncated
    else bad = Mutate(bytes, rng);                               // corrupt
    const std::string path = dir_ + "/img" + std::to_string(i) + (i % 2 ? ".png" : ".jpg");
    WriteBytes(path, bad);
    Check(path, "saliency --model " + model_ + " --image " + path + " --device cpu --out " + out_, out_);
    ++n;
  }
  // Not images at all, and images of odd shapes.
  WriteBytes(dir_ + "/empty.png", "");
  WriteBytes(dir_ + "/text.png", "hello");
  for (const char* name : {"empty.png", "text.png"}) {
    const std::string path = dir_ + "/" + name;
    EXPECT_EQ(Check(name, "guided --model " + model_ + " --image " + path + " --out " + out_, out_), 2);
    ++n;
  }
  EXPECT_EQ(Check("folder as image", "guided --model " + model_ + " --image " + dir_ + "/out --out " + out_, out_), 2);
  EXPECT_GE(n + 1, 103);
}

TEST_F(Corpus, TruncatedAndCorruptModels) {
  std::mt19937 rng(13);
  const std::string bytes = ReadBytes(model_);
  for (int i = 0; i < 60; ++i) {
    std::string bad;
    if (i % 2 == 0) {
      bad = bytes.substr(0, rng() % bytes.size());
    } else {
      bad = bytes;
      for (int k = 0; k < 8; ++k) bad[rng() % bad.size()] = static_cast<char>(rng() & 0xff);
    }
    const std::string path = dir_ + "/model" + std::to_string(i) + ".pt";
    WriteBytes(path, bad);
    Check(path, "saliency --model " + path + " --image " + image_ + " --device cpu --out " + out_, out_);
  }
  WriteBytes(dir_ + "/empty.pt", "");
  EXPECT_EQ(Check("empty model", "guided --model " + dir_ + "/empty.pt --image " + image_ + " --out " + out_, out_), 2);
}

// TorchScript modules that are not single-input image classifiers.
void SaveModule(const std::string& path, const std::string& cls, const std::string& source) {
  torch::jit::Module m("__torch__.corpus." + cls, test::SharedUnit(), true);
  m.define(source);
  m.save(path);
  test::WriteText(fs::path(path).replace_extension(".json").string(),
                  R"({"input_size": [16, 16], "channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})");
}

TEST_F(Corpus, ModelsThatAreNotClassifiers) {
  struct Case {
    std::string name, source;
    int expected;  // exit code
  };
  const std::vector<Case> cases{
      {"TwoInputs", "def forward(self, x, y):\n    return x.mean([2, 3]) + y.mean([2, 3])\n", 2},
      {"NoInput", "def forward(self):\n    return torch.zeros(1, 10)\n", 2},
      {"ScalarOutput", "def forward(self, x):\n    return x.sum()\n", 2},
      {"DictOutput", "def forward(self, x):\n    return {'logits': x.mean([2, 3])}\n", 2},
      {"StringOutput", "def forward(self, x):\n    return 'cat'\n", 2},
      {"ThreeD", "def forward(self, x):\n    return x.mean(2)\n", 2},
      {"NaNOutput", "def forward(self, x):\n    return x.mean([2, 3]) * float('nan')\n", 1},
      {"InfOutput", "def forward(self, x):\n    return x.mean([2, 3]) / 0.0\n", 1},
      {"RaisesOnImages",
       "def forward(self, x):\n    assert bool(x.abs().sum() == 0.0), 'boom'\n"
       "    return x.mean([2, 3])\n", 1},
      {"RaisesAlways", "def forward(self, x):\n    assert bool(x.sum() != x.sum()), 'always'\n    return x.mean([2, 3])\n", 2},
      {"NoGradientPath", "def forward(self, x):\n    return torch.zeros(x.size(0), 10)\n", 0},
      {"IntegerOutput", "def forward(self, x):\n    return (x.mean([2, 3]) > 0).long()\n", 0},
  };
  const std::vector<std::string> techniques{"saliency", "guided", "gradcam", "occlusion --window 8 --stride 8",
                                            "integrated-gradients --steps 4", "scorecam", "smoothgrad --samples 4"};
  int runs = 0;
  for (const auto& c : cases) {
    const std::string path = dir_ + "/" + c.name + ".pt";
    SaveModule(path, c.name, c.source);
    for (const auto& t : techniques) {
      const std::string what = c.name + " / " + t;
      const int code = Check(what, t + " --model " + path + " --image " + image_ + " --out " + out_, out_);
      ++runs;
      // Every technique of a case must fail (or pass) the same way, except those whose own
      // demands the model cannot meet (a CAM needs a convolutional layer).
      if (t == "saliency" || t == "guided" || t.rfind("occlusion", 0) == 0)
        EXPECT_EQ(code, c.expected) << what;
    }
  }
  EXPECT_GE(runs, 84);
}

}  // namespace
}  // namespace netlens
