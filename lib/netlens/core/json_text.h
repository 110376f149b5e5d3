// JSON as text that never throws, for messages, manifests and progress lines.
#pragma once

#include <string>

#include "netlens/core/options.h"

namespace netlens {

// Invalid UTF-8 in strings (file names are bytes on Linux) is replaced by U+FFFD instead of
// raising nlohmann's type_error 316.
std::string SafeDump(const Json& value, int indent = -1);

// SafeDump cut to `max_chars` with "..." for messages (a value may hold 200,000 elements).
std::string Brief(const Json& value, size_t max_chars = 120);

}  // namespace netlens
