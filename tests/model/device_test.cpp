// CUDA paths: the same technique on CUDA and on the CPU gives the same result. Skipped on
// machines without a CUDA device (and with Debian's CPU-only LibTorch).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include "netlens/core/errors.h"
#include "netlens/techniques/common.h"
#include "tests/test_util.h"

namespace netlens {
namespace {

TEST(Device, AutoPicksCpuWithoutCudaAndBadNamesAreUsageErrors) {
  const torch::Device d = ResolveDevice("auto");
  EXPECT_EQ(d.is_cuda(), torch::cuda::is_available());
  EXPECT_THROW(ResolveDevice("tpu"), UsageError);
  if (!torch::cuda::is_available()) EXPECT_THROW(ResolveDevice("cuda"), UsageError);
}

TEST(Device, CudaGradientsEqualCpuGradients) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(0);
  torch::jit::Module m("Net", test::SharedUnit(), true);
  m.register_parameter("w1", torch::randn({16, 3 * 8 * 8}, torch::kFloat64), false);
  m.register_parameter("w2", torch::randn({4, 16}, torch::kFloat64), false);
  m.define("def forward(self, x):\n    h = torch.relu(torch.matmul(torch.flatten(x, 1), self.w1.t()))\n"
           "    return torch.matmul(h, self.w2.t())\n");
  const std::string dir = test::TempDir("cuda");
  m.save(dir + "/m.pt");
  test::WriteText(dir + "/m.json", R"({"input_size": [8, 8], "mean": [0,0,0], "std": [1,1,1]})");
  ModelRequest request;
  request.path = dir + "/m.pt";
  request.dtype = "float64";
  request.device = "cpu";
  auto cpu = Model::Load(request);
  request.device = "cuda";
  auto cuda = Model::Load(request);
  const torch::Tensor x = torch::randn({1, 3, 8, 8}, torch::kFloat64);
  for (auto rule : {BackwardRule::kVanilla, BackwardRule::kGuided}) {
    const auto a = TargetGradients(*cpu, x, 2, {}, rule).input_grad;
    const auto b = TargetGradients(*cuda, x.to(torch::kCUDA), 2, {}, rule).input_grad;
    EXPECT_TRUE(b.is_cuda());
    EXPECT_TRUE(test::AllClose(a, b.cpu(), 1e-10));
  }
}

// pip's LibTorch exports its own copy of std::filesystem, from an older toolchain, whose
// remove_all jumped to address 0 (it crashed these tests on a GPU machine). The dynamic linker
// binds a program's calls to the first definition in load order, so CMake lists libstdc++ first
// where LibTorch exports one: netlens' std::filesystem calls must reach libstdc++'s own.
TEST(Device, StdFilesystemCallsReachLibstdcxx) {
  for (const char* symbol : {"_ZNSt10filesystem10remove_allERKNS_7__cxx114pathE",
                             "_ZNSt10filesystem18create_directoriesERKNS_7__cxx114pathE",
                             "_ZNSt10filesystem6renameERKNS_7__cxx114pathES3_"}) {
    void* bound = dlsym(RTLD_DEFAULT, symbol);
    ASSERT_NE(bound, nullptr) << symbol;
    Dl_info info{};
    ASSERT_NE(dladdr(bound, &info), 0) << symbol;
    EXPECT_NE(std::string(info.dli_fname).find("libstdc++"), std::string::npos) << symbol << " from " << info.dli_fname;
  }
}

}  // namespace
}  // namespace netlens
