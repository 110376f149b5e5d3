#include "netlens/core/blas.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include "netlens/model/libtorch.h"

#include <cstdlib>
#include <string>

#include "tests/test_util.h"

namespace netlens {
namespace {

using test::DynamicOpenBlas;

// A float32 product through the BLAS against the same product in float64.
void ExpectProductsRight() {
  torch::manual_seed(3);
  const auto a = torch::randn({193, 257}), b = torch::randn({257, 131});
  const auto exact = torch::mm(a.to(torch::kFloat64), b.to(torch::kFloat64));
  EXPECT_LT((torch::mm(a, b).to(torch::kFloat64) - exact).abs().max().item<double>(), 1e-3);
}

// OpenBLAS on a CPU it does not know ends on its Prescott kernels (simulated here by loading them
// as OPENBLAS_CORETYPE would); ChooseBlasKernels replaces them with what the CPU supports, says
// so, and leaves no variable behind. A user's OPENBLAS_CORETYPE is kept.
TEST(Blas, ReplacesTheGenericKernelsOfAnUnknownCpu) {
  const DynamicOpenBlas blas;
  if (!blas.available()) GTEST_SKIP() << "not a DYNAMIC_ARCH OpenBLAS: " << DescribeBlas(DetectBlas());
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = user ? user : "";
  const std::string native = (blas.Load(""), blas.corename());

  blas.Load("Prescott");
  unsetenv("OPENBLAS_CORETYPE");
  ChooseBlasKernels();
  EXPECT_EQ(std::getenv("OPENBLAS_CORETYPE"), nullptr);
  const std::string chosen = blas.corename();
  if (__builtin_cpu_supports("avx")) {
    EXPECT_NE(chosen, "Prescott");
    const std::string said = DetectBlas().kernels_changed;
    EXPECT_NE(said.find(chosen), std::string::npos) << said;
    EXPECT_NE(said.find("Prescott"), std::string::npos) << said;
    EXPECT_NE(DescribeBlas(DetectBlas()).find("OPENBLAS_CORETYPE"), std::string::npos);
  } else {
    EXPECT_EQ(chosen, "Prescott");
  }
  ExpectProductsRight();

  blas.Load("Prescott");  // the user asked for them: kept
  ChooseBlasKernels();
  EXPECT_EQ(std::string(blas.corename()), "Prescott");
  ExpectProductsRight();

  blas.Load(saved.c_str());  // as the process started
  if (saved.empty()) EXPECT_EQ(std::string(blas.corename()), native);
}

// OPENBLAS_CORETYPE in the environment is the user's choice and kept, but said: with the note
// that it costs speed where it names AVX2 kernels on a CPU with AVX-512.
TEST(Blas, SaysWhenTheEnvironmentChoosesTheKernels) {
  if (dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init") == nullptr) GTEST_SKIP() << "not a DYNAMIC_ARCH OpenBLAS";
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = user ? user : "";
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");

  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  BlasInfo info = DetectBlas();
  EXPECT_EQ(info.kernels_from_environment, "Haswell");
  EXPECT_EQ(info.narrower_kernels, avx512);
  const std::string said = DescribeBlas(info);
  EXPECT_NE(said.find("OPENBLAS_CORETYPE=Haswell"), std::string::npos) << said;
  EXPECT_EQ(said.find("AVX-512") != std::string::npos, avx512) << said;

  setenv("OPENBLAS_CORETYPE", "skylakex", 1);  // OpenBLAS ignores case
  info = DetectBlas();
  EXPECT_FALSE(info.narrower_kernels);
  EXPECT_EQ(DescribeBlas(info).find("AVX-512"), std::string::npos);

  unsetenv("OPENBLAS_CORETYPE");
  info = DetectBlas();
  EXPECT_EQ(info.kernels_from_environment, "");
  EXPECT_FALSE(info.narrower_kernels);
  EXPECT_EQ(DescribeBlas(info).find("in the environment"), std::string::npos);

  if (!saved.empty()) setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
}

}  // namespace
}  // namespace netlens
