// `netlens bench`: times each technique on one model and image and compares it with the floor it
// cannot beat on this machine: the batched forward (and backward) passes it needs.
#pragma once

#include "netlens/core/options.h"

namespace netlens {

const OptionTable& BenchOptions();

// Runs the benchmark and prints a Markdown table to stdout. Returns an exit code.
int RunBench(const Params& params);

}  // namespace netlens
