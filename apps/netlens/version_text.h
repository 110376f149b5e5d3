// What `netlens --version` prints, for the executable (main.cpp, which answers it without loading
// LibTorch) and the engine's command line (cli.cpp, whose --help lists the flag).
#pragma once

#include <string>

#include <torch/version.h>

#include "netlens/core/blas.h"
#include "netlens/core/version.h"

namespace netlens {

// The BLAS line describes the BLAS loaded in this process (DetectBlas walks the loaded objects).
inline std::string VersionText() {
  return std::string("netlens ") + kVersion + "\nLibTorch " + TORCH_VERSION + "\n" + DescribeBlas(DetectBlas());
}

}  // namespace netlens
