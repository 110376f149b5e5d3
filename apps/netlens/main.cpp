// netlens: what a convolutional network sees. Parses, runs, and maps errors to exit codes:
// 0 success, 2 bad usage or config, 1 runtime failure.
#include <c10/util/Exception.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdlib>
#include <iostream>

#include "apps/netlens/cli.h"
#include "netlens/core/blas.h"
#include "netlens/core/errors.h"
#include "netlens/core/log.h"

namespace {

// glibc serves every allocation above its mmap threshold (at most 32 MB by default) with a fresh
// mmap, which the kernel page-faults and zeroes on first touch and unmaps on free. A batch's
// activations are tens of MB each, allocated and freed at every optimization step or batched
// pass: measured on featurevis with 16 channels, that was most of the step's time (1.5 s ->
// 0.55 s per step). Keeping large blocks in the heap lets them be reused.
// NETLENS_MALLOC_DEFAULT=1 keeps glibc's defaults (for comparisons, docs/performance.md).
void TuneAllocator() {
#if defined(__GLIBC__)
  if (std::getenv("NETLENS_MALLOC_DEFAULT") != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
  netlens::ChooseBlasKernels();
  try {
    return netlens::RunCommandLine(argc, argv);
  } catch (const netlens::UsageError& e) {
    netlens::Log().error("{}", e.what());
    return netlens::kExitUsage;
  } catch (const c10::Error& e) {
    netlens::Log().error("LibTorch: {}", e.what_without_backtrace());
    return netlens::kExitFailure;
  } catch (const std::exception& e) {
    netlens::Log().error("{}", e.what());
    return netlens::kExitFailure;
  }
}
