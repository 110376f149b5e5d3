// Renders a technique's raw tensors and writes them, atomically, as .npy and PNG files.
#pragma once

#include <string>
#include <vector>

#include "netlens/core/options.h"
#include "netlens/image/image_io.h"
#include "netlens/techniques/technique.h"

namespace netlens {

// Files are named <folder>/<base>_<artifact>[_<layer>][_<view>].<ext>. For input attributions
// (1 x C x H x W): the raw .npy, a colour picture of the gradient (min-max), _gray (sum |g| over
// channels, outlier-clipped), _heatmap (that map in JET over the input), _signed (diverging map of
// sum g), and with pos_neg _pos / _neg (max(g,0)/max(g), max(-g,0)/max(-g)). For layer maps
// (1 x 1 x h x w): the raw .npy, and _heatmap / _gray after ReLU, upsampling and min-max scaling.
// Pictures (N x C x H x W in [0, 1]): the raw .npy, a PNG per sample (_<i> when N > 1, with its
// caption in the manifest) and _grid; animations (T x N x C x H x W): a looping GIF.
// Returns the manifest's `outputs` list with paths relative to `root`.
Json WriteArtifacts(const std::vector<Artifact>& artifacts, const InputImage& input,
                    const std::string& folder, const std::string& base, const std::string& root,
                    double outlier_percent);

}  // namespace netlens
