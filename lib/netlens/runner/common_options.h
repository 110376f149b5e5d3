// Options every task has (model, images, device, output, target, preprocessing), declared once.
#pragma once

#include "netlens/core/options.h"
#include "netlens/model/model.h"

namespace netlens {

const OptionTable& CommonOptions();
// Keys of CommonOptions that may stand at the top of a task file as shared defaults (all).
// The model request (path, device, dtype, metadata overrides) from validated options.
ModelRequest ModelRequestFrom(const Params& params);
// The CPU threads a run uses: --threads when given (> 0); else OMP_NUM_THREADS when it is set to a
// positive number, as LibTorch and every OpenMP program read it (several netlens processes side
// by side, a test runner's -j, a shared machine); else every core. Sets them and logs the choice.
int64_t UseCpuThreads(const Params& params);

}  // namespace netlens
