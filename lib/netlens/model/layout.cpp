#include "netlens/model/layout.h"

#include <cmath>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"

namespace netlens {
namespace {

// A grid of gh x gw positions over an input of height x width: one stride both ways (within 10%:
// padding and odd kernels make convolutional grids inexact, e.g. SqueezeNet's 109 at 224).
bool GridFits(int64_t gh, int64_t gw, int64_t height, int64_t width) {
  if (gh < 1 || gw < 1 || gh > height || gw > width) return false;
  const double sh = static_cast<double>(height) / static_cast<double>(gh);
  const double sw = static_cast<double>(width) / static_cast<double>(gw);
  return std::abs(sh - sw) <= 0.1 * std::max(sh, sw);
}

// Patches of one integer size p: floor(height / p) x floor(width / p) (a patch embedding is a
// convolution with stride = kernel = p).
bool PatchGridFits(int64_t gh, int64_t gw, int64_t height, int64_t width) {
  for (int64_t p = 1; p <= std::min(height, width); ++p)
    if (height / p == gh && width / p == gw) return true;
  return false;
}

std::string ShapeText(const std::vector<int64_t>& shape) { return c10::str(c10::IntArrayRef(shape)); }

}  // namespace

std::string SpatialLayout::Describe() const {
  switch (kind) {
    case Kind::kNCHW: return "nchw";
    case Kind::kNHWC: return "nhwc";
    case Kind::kTokens:
      return "tokens(" + (prefix > 0 ? std::to_string(prefix) + "+" : std::string()) + std::to_string(h) + "x" +
             std::to_string(w) + ")";
    case Kind::kNone: break;
  }
  return "none";
}

SpatialLayout InferSpatialLayout(const std::vector<int64_t>& shape, int64_t height, int64_t width,
                                 const std::string& override_kind) {
  SpatialLayout out;
  const std::string input = std::to_string(height) + "x" + std::to_string(width);
  std::string want = override_kind;
  int64_t want_prefix = -1;
  if (StartsWith(want, "tokens:")) {
    try {
      want_prefix = std::stoll(want.substr(7));
    } catch (const std::exception&) {
      throw UsageError("--token-layout " + Quote(override_kind) + ": the number of prefix tokens after \"tokens:\" "
                       "is not a whole number (e.g. tokens:1 for a class token)");
    }
    want = "tokens";
  }
  if (!want.empty() && want != "nchw" && want != "nhwc" && want != "tokens")
    throw UsageError("--token-layout " + Quote(override_kind) + " is not a layout; give nchw, nhwc, tokens or tokens:P");
  if (shape.size() == 4) {
    const bool nchw = GridFits(shape[2], shape[3], height, width);
    const bool nhwc = GridFits(shape[1], shape[2], height, width);
    if (want == "tokens") {
      out.why_not = "tokens need a 3-D output (N x tokens x C); this one has shape " + ShapeText(shape);
      return out;
    }
    if (want == "nhwc" || (want.empty() && nhwc && !nchw)) {
      out.kind = SpatialLayout::Kind::kNHWC;
      out.h = shape[1], out.w = shape[2], out.channels = shape[3];
    } else {  // nchw also where no grid fits: any 4-D output was read so before layouts were inferred
      out.kind = SpatialLayout::Kind::kNCHW;
      out.h = shape[2], out.w = shape[3], out.channels = shape[1];
      out.ambiguous = want.empty() && nhwc && nchw;
    }
    return out;
  }
  if (shape.size() == 3) {
    if (want == "nchw" || want == "nhwc") {
      out.why_not = want + " needs a 4-D output; this one has shape " + ShapeText(shape);
      return out;
    }
    const int64_t tokens = shape[1];
    for (int64_t prefix = want_prefix >= 0 ? want_prefix : 0; prefix <= (want_prefix >= 0 ? want_prefix : 8); ++prefix) {
      const int64_t n = tokens - prefix;
      if (n < 1) break;
      for (int64_t gh = 1; gh <= n; ++gh) {
        if (n % gh != 0 || !PatchGridFits(gh, n / gh, height, width)) continue;
        if (out.spatial()) {
          out.ambiguous = true;
          return out;
        }
        out.kind = SpatialLayout::Kind::kTokens;
        out.prefix = prefix, out.h = gh, out.w = n / gh, out.channels = shape[2];
      }
    }
    if (!out.spatial())
      out.why_not = "its " + std::to_string(tokens) + " tokens (shape " + ShapeText(shape) + ") are not " +
                    (want_prefix >= 0 ? std::to_string(want_prefix) : std::string("0 to 8")) +
                    " prefix tokens followed by a grid of patches over the " + input + " input";
    return out;
  }
  out.why_not = "shape " + ShapeText(shape) + " has no spatial positions (it needs N x C x h x w, N x h x w x C "
                "or N x tokens x C)";
  return out;
}

torch::Tensor ToSpatial(const torch::Tensor& t, const SpatialLayout& layout) {
  switch (layout.kind) {
    case SpatialLayout::Kind::kNCHW: return t;
    case SpatialLayout::Kind::kNHWC: return t.permute({0, 3, 1, 2});
    case SpatialLayout::Kind::kTokens:
      return t.narrow(1, layout.prefix, layout.h * layout.w)
          .reshape({t.size(0), layout.h, layout.w, t.size(2)})
          .permute({0, 3, 1, 2});
    case SpatialLayout::Kind::kNone: break;
  }
  throw InternalError("ToSpatial on a layer without a spatial layout: " + layout.why_not);
}

}  // namespace netlens
