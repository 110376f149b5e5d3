// The engine of the netlens command: everything that needs LibTorch, OpenCV and the techniques,
// built as a shared library that the small netlens executable (main.cpp) loads when a command
// needs it. Parses, runs, and maps errors to exit codes: 0 success, 2 bad usage or config, 1
// runtime failure.
#include <c10/util/Exception.h>

#include <exception>

#include "apps/netlens/cli.h"
#include "netlens/core/blas.h"
#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/model/lens.h"

extern "C" __attribute__((visibility("default"))) int netlens_engine_main(int argc, char** argv) {
  netlens::ChooseBlasKernels();
  try {
    return netlens::RunCommandLine(argc, argv);
  } catch (const netlens::UsageError& e) {
    netlens::Log().error("{}", e.what());
    return netlens::kExitUsage;
  } catch (const c10::Error& e) {
    netlens::Log().debug("{}", e.what_without_backtrace());
    netlens::Log().error("LibTorch: {}", netlens::TorchErrorSummary(e));
    return netlens::kExitFailure;
  } catch (const std::exception& e) {
    netlens::Log().debug("{}", e.what());
    netlens::Log().error("{}", netlens::TorchErrorSummary(e));
    return netlens::kExitFailure;
  }
}
