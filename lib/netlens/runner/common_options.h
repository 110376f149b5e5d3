// Options every task has (model, images, device, output, target, preprocessing), declared once.
#pragma once

#include "netlens/core/options.h"
#include "netlens/model/model.h"

namespace netlens {

const OptionTable& CommonOptions();
// Keys of CommonOptions that may stand at the top of a task file as shared defaults (all).
// The model request (path, device, dtype, metadata overrides) from validated options.
ModelRequest ModelRequestFrom(const Params& params);

}  // namespace netlens
