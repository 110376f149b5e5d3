// CUDA paths: the same technique on CUDA and on the CPU gives the same result. Skipped on
// machines without a CUDA device (and with Debian's CPU-only LibTorch).
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

}  // namespace
}  // namespace netlens
