#include "netlens/core/blas.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

namespace netlens {
namespace {

std::string& KernelsChanged() {
  static std::string changed;
  return changed;
}

// The kernels OpenBLAS's gotoblas_dynamic_init falls back to for a CPU it does not know, from
// the features the CPU and the operating system support; "" where it would keep Prescott.
const char* FallbackCoreType() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  if (__builtin_cpu_supports("avx")) return "Sandybridge";
#endif
  return "";
}

int CollectBlas(struct dl_phdr_info* info, size_t, void* data) {
  auto* found = static_cast<std::string*>(data);
  const std::string name = info->dlpi_name ? info->dlpi_name : "";
  const std::string base = std::filesystem::path(name).filename().string();
  const bool blas = base.rfind("libblas.so", 0) == 0 || base.rfind("libopenblas", 0) == 0 ||
                    base.rfind("libmkl_rt", 0) == 0 || base.rfind("libblis", 0) == 0;
  if (blas && found->empty()) {
    std::error_code ec;
    const auto real = std::filesystem::canonical(name, ec);
    *found = ec ? name : real.string();
  }
  return 0;
}

}  // namespace

BlasInfo DetectBlas() {
  BlasInfo info;
  dl_iterate_phdr(CollectBlas, &info.library);
  info.kernels_changed = KernelsChanged();
  using ConfigFn = char* (*)();
  if (auto fn = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    info.name = std::string("OpenBLAS (") + fn() + ")";
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    if (coretype != nullptr && *coretype != '\0' && dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init") != nullptr) {
      info.kernels_from_environment = coretype;
      const std::string wanted = FallbackCoreType();
      std::string k = info.kernels_from_environment;  // OpenBLAS reads it without regard to case
      std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const bool wide = k == "skylakex" || k == "cooperlake" || k == "sapphirerapids";
      info.narrower_kernels = wanted == "SkylakeX" && !wide;
    }
    using ParallelFn = int (*)();
    if (auto parallel = reinterpret_cast<ParallelFn>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"))) {
      const int kind = parallel();
      info.threading = kind == 0 ? "sequential" : kind == 1 ? "pthreads" : "OpenMP";
      info.competing_threads = kind == 1;
    }
  } else if (dlsym(RTLD_DEFAULT, "mkl_get_version") || dlsym(RTLD_DEFAULT, "MKL_Get_Version")) {
    info.name = "Intel MKL";
  } else if (dlsym(RTLD_DEFAULT, "bli_info_get_version_str")) {
    info.name = "BLIS";
  } else if (info.library.find("/blas/") != std::string::npos) {
    info.name = "reference BLAS (netlib)";
    info.slow = true;
  } else if (info.library.empty()) {
    info.name = "built into LibTorch or none found";
  } else {
    info.name = "unknown";
  }
  return info;
}

void ChooseBlasKernels() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  using NameFn = char* (*)();
  using InitFn = void (*)();
  auto corename = reinterpret_cast<NameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  auto quit = reinterpret_cast<InitFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  auto init = reinterpret_cast<InitFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  if (corename == nullptr || quit == nullptr || init == nullptr) return;  // not a DYNAMIC_ARCH OpenBLAS
  const std::string before = corename();
  if (before != "Prescott") return;
  const char* wanted = FallbackCoreType();
  if (*wanted == '\0') return;  // a real SSE3-only CPU
  setenv("OPENBLAS_CORETYPE", wanted, 1);
  quit();
  init();
  unsetenv("OPENBLAS_CORETYPE");
  KernelsChanged() = "its " + std::string(corename()) + " kernels: this OpenBLAS does not know the CPU and chose its generic " +
                     before + " ones (set OPENBLAS_CORETYPE to choose)";
}

std::string DescribeBlas(const BlasInfo& info) {
  std::string text = "BLAS: " + info.name;
  if (!info.threading.empty()) text += ", " + info.threading + " threads";
  if (!info.library.empty()) text += " from " + info.library;
  if (!info.kernels_changed.empty()) text += "; netlens runs " + info.kernels_changed;
  if (!info.kernels_from_environment.empty()) {
    text += "; OPENBLAS_CORETYPE=" + info.kernels_from_environment + " in the environment chooses its kernels";
    if (info.narrower_kernels)
      text += " (this CPU has AVX-512, for which OpenBLAS chooses wider ones: matrix products up to 1.7x faster "
              "without the variable)";
  }
  if (info.competing_threads)
    text += "; its thread pool competes with LibTorch's OpenMP threads (matrix products up to 2x "
            "slower): install libopenblas0-openmp (Debian) and rebuild netlens, which then loads it";
  if (info.slow)
    text += "; this is the slow reference implementation: install OpenBLAS (Debian: apt-get "
            "install libopenblas0-openmp) for 10-30x faster matrix products";
  return text;
}

}  // namespace netlens
