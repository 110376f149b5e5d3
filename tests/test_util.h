// Helpers for tests: small TorchScript models written in TorchScript source, saved beside a
// sidecar netlens metadata file, and loaded through the same path as a user's model.
#pragma once

#include <gtest/gtest.h>
#include "netlens/model/libtorch.h"

#include <dlfcn.h>
#include <ftw.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "netlens/model/model.h"

namespace netlens::test {

// Debian's OpenBLAS is a DYNAMIC_ARCH build: it picks its kernels when it loads, and picks them
// again from OPENBLAS_CORETYPE when asked to (gotoblas_dynamic_quit / _init).
struct DynamicOpenBlas {
  using NameFn = char* (*)();
  using InitFn = void (*)();
  NameFn corename = reinterpret_cast<NameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  InitFn quit = reinterpret_cast<InitFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  InitFn init = reinterpret_cast<InitFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  bool available() const { return corename && quit && init; }
  // What OpenBLAS does at load, with OPENBLAS_CORETYPE as given ("" = unset).
  void Load(const char* coretype) const {
    if (*coretype) setenv("OPENBLAS_CORETYPE", coretype, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    quit();
    init();
  }
};

// Runs a test's float64 products on the kernels its reference figures were computed with, and
// restores the process's kernels (and OPENBLAS_CORETYPE) at the end of the scope. Kernel sets sum
// in other orders: the last bits of a product differ, and where a rule branches on a value (a
// threshold, a tie between max-pool windows) a figure can move far more than the rounding.
class PinnedBlasKernels {
 public:
  explicit PinnedBlasKernels(const char* coretype) {
    if (!blas_.available()) return;
    const char* user = std::getenv("OPENBLAS_CORETYPE");
    saved_ = user ? user : "";
    previous_ = blas_.corename();
    blas_.Load(coretype);
  }
  ~PinnedBlasKernels() {
    if (!blas_.available()) return;
    // Back to the kernels the scope began with, then to the environment it began with.
    blas_.Load(previous_.c_str());
    if (saved_.empty()) unsetenv("OPENBLAS_CORETYPE");
    else setenv("OPENBLAS_CORETYPE", saved_.c_str(), 1);
  }
  PinnedBlasKernels(const PinnedBlasKernels&) = delete;
  PinnedBlasKernels& operator=(const PinnedBlasKernels&) = delete;

 private:
  DynamicOpenBlas blas_;
  std::string saved_, previous_;
};

// One compilation unit for all modules a test builds, so that parents can call submodules.
inline std::shared_ptr<torch::jit::CompilationUnit> SharedUnit() {
  static auto unit = std::make_shared<torch::jit::CompilationUnit>();
  return unit;
}

// Removes a folder and what it holds, by POSIX nftw rather than std::filesystem::remove_all: with
// pip's LibTorch a program may reach LibTorch's broken copy of the latter (Device.StdFilesystem...).
inline void RemoveTree(const std::string& dir) {
  nftw(dir.c_str(), [](const char* path, const struct stat*, int, struct FTW*) { return std::remove(path); }, 16,
       FTW_DEPTH | FTW_PHYS);
}

inline std::string TempDir(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = (std::filesystem::temp_directory_path() / "netlens_tests" /
                     (std::string(info->test_suite_name()) + "." + info->name() + "." + name))
                        .string();
  RemoveTree(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// The model file at `path` loaded on the CPU in `dtype`, as the CLI would load it.
inline std::shared_ptr<Model> LoadCpuModel(const std::string& path, const std::string& dtype = "float32") {
  ModelRequest request;
  request.path = path;
  request.device = "cpu";
  request.dtype = dtype;
  return Model::Load(request);
}

// Saves `module` with an identity-normalization sidecar for a C x H x W input and loads it.
inline std::shared_ptr<Model> SaveAndLoad(torch::jit::Module& module, int64_t c, int64_t h,
                                          int64_t w, const std::string& dtype = "float64") {
  const std::string dir = TempDir("model");
  const std::string path = dir + "/m.pt";
  module.save(path);
  std::string mean = "[", stdv = "[";
  for (int64_t i = 0; i < c; ++i) {
    mean += std::string(i ? "," : "") + "0";
    stdv += std::string(i ? "," : "") + "1";
  }
  WriteText(dir + "/m.json", "{\"input_size\": [" + std::to_string(h) + "," + std::to_string(w) +
                                 "], \"channels\": " + std::to_string(c) + ", \"mean\": " + mean +
                                 "], \"std\": " + stdv + "], \"channel_order\": \"" +
                                 (c == 1 ? "gray" : "rgb") + "\"}");
  return LoadCpuModel(path, dtype);
}

struct ShellResult {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command and collects its output and exit code.
inline ShellResult Shell(const std::string& command) {
  ShellResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A "billion laughs" YAML file: nine levels of aliases, each repeating the previous nine times
// (9^9 = 387 million values once expanded, 10 lines of text).
inline std::string BillionLaughsYaml() {
  std::string text = "a0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n";
  for (int level = 1; level <= 9; ++level) {
    text += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i) text += std::string(i ? "," : "") + "*a" + std::to_string(level - 1);
    text += "]\n";
  }
  return text;
}

// Whether a temporary file of an atomic write (name containing ".tmp-") is left below `dir`.
inline bool HasTempFiles(const std::string& dir) {
  if (!std::filesystem::exists(dir)) return false;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

// Paths fixed when the build was configured (tests/paths.cpp.in): the checkout, the netlens
// binary, the default model folders, OpenBLAS's folder. They live in one small generated file
// rather than in every test's compile flags, so that ccache (which hashes paths relative to the
// checkout but not a string in a -D flag) reuses the test objects in a clone at another path.
std::string SourceDir();
std::string NetlensBinary();
std::string SharedModelsDefault();
std::string TestModelsDefault();
std::string BlasDir();

inline std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

inline std::string SharedModels() {
  return EnvOr("NETLENS_SHARED_MODELS", SharedModelsDefault());
}

inline std::string TestModels() { return EnvOr("NETLENS_TEST_MODELS", TestModelsDefault()); }

inline ::testing::AssertionResult AllClose(const torch::Tensor& a, const torch::Tensor& b,
                                           double atol, double rtol = 0) {
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shapes differ: " << a.sizes() << " vs " << b.sizes();
  const auto diff = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs();
  const auto bound = atol + rtol * b.to(torch::kFloat64).abs();
  if ((diff <= bound).all().item<bool>()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |a - b| = " << diff.max().item<double>();
}

}  // namespace netlens::test
