#include "netlens/core/blas.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <filesystem>

namespace netlens {
namespace {

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
  using ConfigFn = char* (*)();
  if (auto fn = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    info.name = std::string("OpenBLAS (") + fn() + ")";
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

std::string DescribeBlas(const BlasInfo& info) {
  std::string text = "BLAS: " + info.name;
  if (!info.threading.empty()) text += ", " + info.threading + " threads";
  if (!info.library.empty()) text += " from " + info.library;
  if (info.competing_threads)
    text += "; its thread pool competes with LibTorch's OpenMP threads (matrix products up to 2x "
            "slower): install libopenblas0-openmp (Debian) and rebuild netlens, which then loads it";
  if (info.slow)
    text += "; this is the slow reference implementation: install OpenBLAS (Debian: apt-get "
            "install libopenblas0-openmp) for 10-30x faster matrix products";
  return text;
}

}  // namespace netlens
