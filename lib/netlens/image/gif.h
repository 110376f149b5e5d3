// Animated GIF encoding with giflib (Debian's libgif): each frame gets its own 256-colour
// palette from giflib's median-cut quantizer; the animation loops forever.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace netlens {

// The bytes of a GIF showing `frames` (8-bit BGR, all the same size) for `delay_cs` hundredths of
// a second each, the last one for `last_delay_cs`. Throws RuntimeError if giflib fails.
std::string GifBytes(const std::vector<cv::Mat>& frames, int delay_cs = 8, int last_delay_cs = 150);

}  // namespace netlens
