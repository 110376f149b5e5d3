// Where a layer's output keeps its spatial positions, found from its shape and the input's size:
// convolutional N x C x h x w, channels-last N x h x w x C (Swin's stages, ConvNeXt's blocks
// between permutes), or tokens N x (P + h w) x C (a vision transformer: P prefix tokens such as
// the class token, DeiT's distillation token or register tokens, then the patches row by row).
// Every layer technique reads a layer through its layout as N x C x h x w (pytorch-grad-cam's
// `reshape_transform`, worked out instead of written by hand, for any input size).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "netlens/model/libtorch.h"

namespace netlens {

struct SpatialLayout {
  enum class Kind { kNone, kNCHW, kNHWC, kTokens };
  Kind kind = Kind::kNone;
  int64_t prefix = 0;       // tokens: leading tokens that are not patches
  int64_t h = 0, w = 0;     // the grid
  int64_t channels = 0;
  bool ambiguous = false;   // another layout fits the shape too (the override decides)
  std::string why_not;      // kNone: why no grid fits

  bool spatial() const { return kind != Kind::kNone; }
  // "nchw", "nhwc", "tokens(1+14x14)", "none"
  std::string Describe() const;
};

// The layout of an output of `shape` (batch first) for an input of `height` x `width` pixels.
// `override_kind` is "" (infer), "nchw", "nhwc" or "tokens" / "tokens:P" (P prefix tokens).
// A 4-D shape is nhwc when its middle two sizes divide the input by one stride and its last two
// do not; otherwise nchw (marked ambiguous when both fit: as many channels as grid columns).
// A 3-D shape fits tokens with the fewest prefix tokens (0 to 8: a class token, a distillation
// token, registers) that leave floor(H / p) x floor(W / p) patches for one patch size p (ViT-B/16
// at 224: 197 = 1 + 14 x 14; at 224 x 320: 1 + 14 x 20); ambiguous where more prefixes fit.
SpatialLayout InferSpatialLayout(const std::vector<int64_t>& shape, int64_t height, int64_t width,
                                 const std::string& override_kind = "");

// `t` (in the layout's form) as N x C x h x w: a view where one exists (permute), else a copy.
torch::Tensor ToSpatial(const torch::Tensor& t, const SpatialLayout& layout);

}  // namespace netlens
