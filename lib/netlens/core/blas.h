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
};

BlasInfo DetectBlas();

// One line for --version and the log: "BLAS: OpenBLAS 0.3.21 (/usr/lib/...)".
std::string DescribeBlas(const BlasInfo& info);

}  // namespace netlens
