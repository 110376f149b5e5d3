// `netlens schema`: a JSON Schema (draft 2020-12) of task files, generated from the same option
// declarations as the flags, for editors and CI validation.
#pragma once

#include "netlens/core/options.h"

namespace netlens {

Json TaskFileSchema();

}  // namespace netlens
