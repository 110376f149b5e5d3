// The scores of a run (manifest entries whose metrics hold `scores`: evaluate's faithfulness
// scores) as <out>/scores.csv, one row per (image, target, technique, metric), and a ranking of
// the techniques per metric (mean over the images, best first) for the terminal.
#pragma once

#include <string>

namespace netlens {

// Returns the ranking table ("" when the run has no scores); writes scores.csv when it has.
std::string WriteScores(const std::string& dir);

}  // namespace netlens
