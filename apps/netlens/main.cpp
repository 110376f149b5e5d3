// netlens: what a convolutional network sees. Parses, runs, and maps errors to exit codes:
// 0 success, 2 bad usage or config, 1 runtime failure.
#include <c10/util/Exception.h>

#include <iostream>

#include "apps/netlens/cli.h"
#include "netlens/core/errors.h"
#include "netlens/core/log.h"

int main(int argc, char** argv) {
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
