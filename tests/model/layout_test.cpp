// Spatial layouts found from a layer's shape and the input size (model/layout.h), and LibTorch's
// failure messages summarized to one line (core/strings.h).
#include <gtest/gtest.h>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"
#include "netlens/model/layout.h"

namespace netlens {
namespace {

using Kind = SpatialLayout::Kind;

TEST(Layout, TokensOfViTAtAnyInputSize) {
  // ViT-B/16 at 224: a class token and 14 x 14 patches.
  SpatialLayout l = InferSpatialLayout({1, 197, 768}, 224, 224);
  EXPECT_EQ(l.kind, Kind::kTokens);
  EXPECT_EQ(l.prefix, 1);
  EXPECT_EQ(l.h, 14);
  EXPECT_EQ(l.w, 14);
  EXPECT_FALSE(l.ambiguous);
  EXPECT_EQ(l.Describe(), "tokens(1+14x14)");
  // Not square (no hard-coded 14 x 14): 224 x 320 gives 14 x 20 patches.
  l = InferSpatialLayout({2, 1 + 14 * 20, 768}, 224, 320);
  EXPECT_EQ(l.kind, Kind::kTokens);
  EXPECT_EQ(l.prefix, 1);
  EXPECT_EQ(l.h, 14);
  EXPECT_EQ(l.w, 20);
  // DeiT's class and distillation tokens; a class token and 4 registers; no prefix at all.
  EXPECT_EQ(InferSpatialLayout({1, 198, 384}, 224, 224).prefix, 2);
  EXPECT_EQ(InferSpatialLayout({1, 201, 384}, 224, 224).prefix, 5);
  l = InferSpatialLayout({1, 196, 384}, 224, 224);
  EXPECT_EQ(l.prefix, 0);
  EXPECT_EQ(l.Describe(), "tokens(14x14)");
}

TEST(Layout, ChannelsLastAndChannelsFirst) {
  // Swin-T's stages at 224 (N x h x w x C) and a ResNet's layer4 (N x C x h x w).
  SpatialLayout l = InferSpatialLayout({1, 56, 56, 96}, 224, 224);
  EXPECT_EQ(l.kind, Kind::kNHWC);
  EXPECT_EQ(l.channels, 96);
  EXPECT_EQ(l.h, 56);
  l = InferSpatialLayout({1, 512, 7, 7}, 224, 224);
  EXPECT_EQ(l.kind, Kind::kNCHW);
  EXPECT_FALSE(l.ambiguous);
  // SqueezeNet's first convolution: 109 at 224 (no padding): inexact, still one stride.
  EXPECT_EQ(InferSpatialLayout({1, 96, 109, 109}, 224, 224).kind, Kind::kNCHW);
  // A non-square input: 7 x 10 positions either way round.
  EXPECT_EQ(InferSpatialLayout({1, 7, 10, 768}, 224, 320).kind, Kind::kNHWC);
  EXPECT_EQ(InferSpatialLayout({1, 768, 7, 10}, 224, 320).kind, Kind::kNCHW);
  // As many channels as grid columns: both fit; nchw, marked ambiguous; the override decides.
  l = InferSpatialLayout({1, 16, 16, 16}, 64, 64);
  EXPECT_EQ(l.kind, Kind::kNCHW);
  EXPECT_TRUE(l.ambiguous);
  l = InferSpatialLayout({1, 16, 16, 16}, 64, 64, "nhwc");
  EXPECT_EQ(l.kind, Kind::kNHWC);
  EXPECT_FALSE(l.ambiguous);
  // Any other 4-D output stays nchw, as every 4-D output was read before layouts were inferred.
  EXPECT_EQ(InferSpatialLayout({1, 10, 3, 17}, 64, 64).kind, Kind::kNCHW);
}

TEST(Layout, NoGridNamesTheShape) {
  SpatialLayout l = InferSpatialLayout({1, 1000}, 224, 224);
  EXPECT_FALSE(l.spatial());
  EXPECT_NE(l.why_not.find("[1, 1000]"), std::string::npos) << l.why_not;
  // 3000 tokens: no prefix of 0..8 leaves a square grid (54 x 54 = 2916, 55 x 55 = 3025).
  l = InferSpatialLayout({1, 3000, 768}, 224, 224);
  EXPECT_FALSE(l.spatial());
  EXPECT_NE(l.why_not.find("[1, 3000, 768]"), std::string::npos) << l.why_not;
  EXPECT_NE(l.why_not.find("224x224"), std::string::npos) << l.why_not;
  // The override: a prefix count that leaves no grid, a 4-D layout for tokens, a bad word.
  EXPECT_FALSE(InferSpatialLayout({1, 197, 768}, 224, 224, "tokens:2").spatial());
  EXPECT_EQ(InferSpatialLayout({1, 197, 768}, 224, 224, "tokens:1").prefix, 1);
  EXPECT_FALSE(InferSpatialLayout({1, 197, 768}, 224, 224, "nhwc").spatial());
  EXPECT_THROW(InferSpatialLayout({1, 197, 768}, 224, 224, "rows"), UsageError);
  EXPECT_THROW(InferSpatialLayout({1, 197, 768}, 224, 224, "tokens:x"), UsageError);
}

TEST(Layout, ToSpatialReadsPatchesRowByRow) {
  // Token 1 + r * w + c holds position (r, c); channel k stays channel k.
  const int64_t h = 2, w = 3, C = 4;
  torch::Tensor t = torch::arange(1 * (1 + h * w) * C, torch::kFloat64).view({1, 1 + h * w, C});
  const SpatialLayout l = InferSpatialLayout({1, 1 + h * w, C}, 16, 24);
  ASSERT_EQ(l.kind, Kind::kTokens);
  ASSERT_EQ(l.h, h);
  ASSERT_EQ(l.w, w);
  const torch::Tensor s = ToSpatial(t, l);
  EXPECT_EQ(s.sizes().vec(), (std::vector<int64_t>{1, C, h, w}));
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c)
      for (int64_t k = 0; k < C; ++k) EXPECT_EQ(s[0][k][r][c].item<double>(), t[0][1 + r * w + c][k].item<double>());
  torch::Tensor nhwc = torch::randn({2, 3, 5, 7}, torch::kFloat64);
  SpatialLayout cl;
  cl.kind = Kind::kNHWC;
  EXPECT_TRUE(ToSpatial(nhwc, cl).equal(nhwc.permute({0, 3, 1, 2})));
}

TEST(TorchMessages, TheReasonAndTheFailingLineOfTheModelsOwnCode) {
  // LibTorch's message for Swin's index with a float tensor (shortened, same structure).
  const std::string what =
      "The following operation failed in the TorchScript interpreter.\n"
      "Traceback of TorchScript, serialized code (most recent call last):\n"
      "  File \"code/__torch__/torchvision/models/swin_transformer.py\", line 69, in forward\n"
      "    relative_position_bias = torch.index(relative_position_bias_table, _7)\n"
      "                             ~~~~~~~~~~~ <--- HERE\n"
      "\n"
      "Traceback of TorchScript, original code (most recent call last):\n"
      "  File \"/usr/lib/python3/dist-packages/torchvision/models/swin_transformer.py\", line 53, in bias\n"
      "    relative_position_bias = relative_position_bias_table[relative_position_index]\n"
      "                             ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~ <--- HERE\n"
      "RuntimeError: tensors used as indices must be long, byte or bool tensors\n";
  EXPECT_EQ(TorchMessageSummary(what),
            "tensors used as indices must be long, byte or bool tensors (at `relative_position_bias = "
            "relative_position_bias_table[relative_position_index]`, File "
            "\"/usr/lib/python3/dist-packages/torchvision/models/swin_transformer.py\", line 53, in bias)");
  EXPECT_FALSE(LooksLikeInputShapeError("tensors used as indices must be long, byte or bool tensors"));
  // A plain message: its first line.
  EXPECT_EQ(TorchMessageSummary("mat1 and mat2 shapes cannot be multiplied (1x4 and 9x3)\nException raised from"),
            "mat1 and mat2 shapes cannot be multiplied (1x4 and 9x3)");
  EXPECT_TRUE(LooksLikeInputShapeError("mat1 and mat2 shapes cannot be multiplied (1x4 and 9x3)"));
  EXPECT_TRUE(LooksLikeInputShapeError(
      "Given groups=1, weight of size [8, 3, 3, 3], expected input[1, 1, 28, 28] to have 3 channels"));
  // An exception raised by the model's own code keeps its reason.
  EXPECT_EQ(TorchMessageSummary("The following operation failed in the TorchScript interpreter.\n"
                                "Traceback of TorchScript (most recent call last):\n"
                                "  File \"m.py\", line 3, in forward\n"
                                "    raise ValueError(\"needs 2 channels\")\n"
                                "    ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~ <--- HERE\n"
                                "builtins.ValueError: needs 2 channels\n"),
            "needs 2 channels (at `raise ValueError(\"needs 2 channels\")`, File \"m.py\", line 3, in forward)");
}

}  // namespace
}  // namespace netlens
