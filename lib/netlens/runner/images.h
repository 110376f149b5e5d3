// Expanding the `image` option: each entry may be a file, a glob ("photos/*.png"), a folder
// (its image files, sorted) or a text file (.txt / .lst) listing one path per line (relative
// paths resolve against the list's folder; empty lines and # comments are skipped).
#pragma once

#include <string>
#include <vector>

namespace netlens {

// Expands every entry; a glob or folder that matches nothing, or a missing list file, is a
// problem reported in `problems` (the entry is then skipped). Plain file paths are kept as given,
// existing or not: a missing image fails its own job (and `run --dry-run` reports it).
std::vector<std::string> ExpandImages(const std::vector<std::string>& entries,
                                      std::vector<std::string>& problems);

bool IsImageFile(const std::string& path);

}  // namespace netlens
