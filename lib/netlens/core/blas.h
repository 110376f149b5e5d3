// Which BLAS the process runs on. Debian's LibTorch is built with BLAS_INFO=generic: it calls
// whatever libblas.so.3 the system's alternatives point to, and the reference (netlib) BLAS is
// 30x slower on matrix products than OpenBLAS. `netlens --version` and every run's log say which
// one is loaded, so that a user on the slow one can see it.
#pragma once

#include <string>

namespace netlens {

struct BlasInfo {
  std::string library;  // real path of the loaded libblas / libopenblas / libmkl, or ""
  std::string name;     // "OpenBLAS 0.3.21 ...", "reference BLAS (netlib)", "MKL", "unknown"
  std::string threading;  // OpenBLAS: "sequential", "pthreads" or "OpenMP"; else ""
  bool slow = false;    // the reference implementation
  // OpenBLAS with its own pthread pool: on few cores its threads and LibTorch's OpenMP threads
  // spin against each other around every matrix product (2.4x slower style-transfer steps on 2
  // cores). The build links netlens to Debian's OpenMP OpenBLAS when it is installed.
  bool competing_threads = false;
  // What ChooseBlasKernels changed in this process ("" if nothing), for the log and --version.
  std::string kernels_changed;
  // OPENBLAS_CORETYPE from the environment, which chooses a DYNAMIC_ARCH OpenBLAS's kernels
  // ("" if unset), and whether it names narrower ones than the CPU runs (AVX2 kernels on a CPU
  // with AVX-512: Gram products of style transfer 1.7x slower on AMD Zen 5).
  std::string kernels_from_environment;
  bool narrower_kernels = false;
};

BlasInfo DetectBlas();

// OpenBLAS's DYNAMIC_ARCH build (Debian's) picks its kernels from the CPU's family and model
// when it loads. A release that does not know the model can end on its generic SSE3 kernels:
// 0.3.21 (Debian 12) on Intel family 6 model 0xCF (Emerald Rapids), whose extended model 0xC
// falls out of its Intel switch into the Pentium 4 case, "Prescott", and runs sgemm 4.4x slower
// than with its SkylakeX kernels (docs/performance.md). Where OpenBLAS says Prescott but the CPU
// has AVX, this re-initializes OpenBLAS with the kernels its own fallback for an unknown CPU
// would choose (SkylakeX with AVX-512, Haswell with AVX2 and FMA, Sandybridge with AVX), through
// the OPENBLAS_CORETYPE variable it reads, set only for that call. A user's OPENBLAS_CORETYPE is
// left alone. Call first thing in main, before any BLAS call and before threads start.
void ChooseBlasKernels();

// One line for --version and the log: "BLAS: OpenBLAS 0.3.21 (/usr/lib/...)".
std::string DescribeBlas(const BlasInfo& info);

}  // namespace netlens
