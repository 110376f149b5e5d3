// The list of techniques. To add one: write techniques/<name>.cpp with a function returning its
// TechniqueInfo, declare it in a header, and add one line to the list in registry.cpp.
#pragma once

#include <string>
#include <vector>

#include "netlens/techniques/technique.h"

namespace netlens {

const std::vector<TechniqueInfo>& Techniques();

// Never returns null: an unknown name throws UsageError with the closest names.
const TechniqueInfo& FindTechnique(const std::string& name);

}  // namespace netlens
