// The image-optimization engine on models small enough to check by hand: objective parsing and
// values, parameterizations, transforms, the optimization loop, the GIF encoder.
#include <gif_lib.h>
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include <cmath>
#include <cstring>
#include <torch/nn/functional/vision.h>
#include <torch/optim/lbfgs.h>

#include "netlens/core/errors.h"
#include "netlens/image/gif.h"
#include "netlens/image/npy.h"
#include "netlens/optvis/lbfgs.h"
#include "netlens/optvis/objective.h"
#include "netlens/optvis/optimize.h"
#include "netlens/optvis/param.h"
#include "netlens/optvis/picture.h"
#include "netlens/optvis/style.h"
#include "netlens/optvis/transform.h"
#include "netlens/techniques/optvis_family.h"
#include "tests/techniques/fixtures.h"

namespace netlens {
namespace {
using optvis::Term;

std::string ParseError(const std::string& text, Model& model) {
  try {
    optvis::ParseObjective(text, model);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Objective, ParsesTermsWeightsAndBatches) {
  test::CamNet net;
  Model& m = *net.model;
  auto o = optvis::ParseObjective("conv:2", m);
  ASSERT_EQ(o.terms.size(), 1u);
  EXPECT_EQ(o.terms[0].kind, Term::Kind::kChannel);
  EXPECT_EQ(o.layers, std::vector<std::string>{"conv"});
  EXPECT_EQ(o.batch, 1);

  o = optvis::ParseObjective("2*(conv:1 - 0.5*conv:2@1,2) - tv", m);
  ASSERT_EQ(o.terms.size(), 3u);
  EXPECT_DOUBLE_EQ(o.terms[0].weight, 2);
  EXPECT_DOUBLE_EQ(o.terms[1].weight, -1);
  EXPECT_EQ(o.terms[1].kind, Term::Kind::kNeuron);
  EXPECT_EQ(o.terms[1].y, 1);
  EXPECT_EQ(o.terms[1].x, 2);
  EXPECT_EQ(o.terms[2].kind, Term::Kind::kTV);
  EXPECT_DOUBLE_EQ(o.terms[2].weight, -1);

  o = optvis::ParseObjective("conv:0..3 + class:1", m);
  EXPECT_EQ(o.batch, 4);
  EXPECT_TRUE(o.needs_logits);
  EXPECT_EQ(o.Caption(2), "conv:2 + class 1");
  o = optvis::ParseObjective("class:0..2", m);
  EXPECT_EQ(o.batch, 3);
  EXPECT_EQ(o.Caption(1), "class 1");
}

TEST(Objective, ErrorsPointAtTheColumnAndSuggest) {
  test::CamNet net;
  Model& m = *net.model;
  std::string e = ParseError("conv:1 - cnv:2", m);
  EXPECT_NE(e.find("column 10"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean \"conv\""), std::string::npos) << e;
  e = ParseError("conv:9", m);
  EXPECT_NE(e.find("4 channels (0..3)"), std::string::npos) << e;
  EXPECT_NE(ParseError("conv:1 *", m).find("at the end"), std::string::npos);
  EXPECT_NE(ParseError("conv:1 * conv:2", m).find("only by a number"), std::string::npos);
  EXPECT_NE(ParseError("conv:0..1 + conv:0..2", m).find("different lengths"), std::string::npos);
  EXPECT_NE(ParseError("class:7", m).find("out of range"), std::string::npos);
  EXPECT_NE(ParseError("direction(conv, [1, 2])", m).find("4 channels"), std::string::npos);
  EXPECT_NE(ParseError("3", m).find("no term"), std::string::npos);
}

// direction(LAYER, FILE.npy): read as the list form; a file larger than any direction of the
// layer is refused before it is read whole, naming the bound.
TEST(Objective, DirectionFilesAreReadWithinABound) {
  test::CamNet net;
  Model& m = *net.model;
  const std::string dir = test::TempDir("direction");
  test::WriteText(dir + "/d.npy", NpyBytes(torch::tensor({2.0, 0.0, 0.0, 0.0}, torch::kFloat64)));
  const auto o = optvis::ParseObjective("direction(conv, " + dir + "/d.npy)", m);
  const auto l = optvis::ParseObjective("direction(conv, [2, 0, 0, 0])", m);
  ASSERT_EQ(o.terms.size(), 1u);
  EXPECT_TRUE(torch::equal(o.terms[0].reference, l.terms[0].reference));
  test::WriteText(dir + "/big.npy", NpyBytes(torch::zeros({100000}, torch::kFloat64)));
  const std::string e = ParseError("direction(conv, " + dir + "/big.npy)", m);
  EXPECT_NE(e.find("a direction over 4 channels"), std::string::npos) << e;
  EXPECT_NE(ParseError("direction(conv, " + dir + "/missing.npy)", m).find("missing.npy"), std::string::npos);
}

TEST(Objective, ValuesAreTheDefinitions) {
  test::CamNet net;
  Model& m = *net.model;
  const torch::Tensor x = torch::rand({3, 2, 6, 6}, torch::kFloat64);
  const Lens::Capture c = m.lens().Forward(x, {"conv"});
  const torch::Tensor a = c.activations[0];  // 3 x 4 x 4 x 4
  auto value = [&](const std::string& text) {
    return optvis::ParseObjective(text, m).Evaluate({a}, c.output, x);
  };
  EXPECT_TRUE(test::AllClose(value("conv:1"), a.select(1, 1).mean({1, 2}), 1e-12));
  EXPECT_TRUE(test::AllClose(value("conv:0..2"),
                             torch::stack({a[0][0].mean(), a[1][1].mean(), a[2][2].mean()}), 1e-12));
  EXPECT_TRUE(test::AllClose(value("conv:3@1,2"), a.select(1, 3).select(1, 1).select(1, 2), 1e-12));
  EXPECT_TRUE(test::AllClose(value("conv:3"), value("conv:3@0,0") * 0 + a.select(1, 3).mean({1, 2}), 1e-12));
  EXPECT_TRUE(test::AllClose(value("conv"), a.pow(2).mean({1, 2, 3}), 1e-12));
  EXPECT_TRUE(test::AllClose(value("class:2 - 0.5*class:0"), c.output.select(1, 2) - 0.5 * c.output.select(1, 0), 1e-12));
  EXPECT_TRUE(test::AllClose(value("l2"), (x - 0.5).pow(2).mean({1, 2, 3}), 1e-12));
  // The direction of channel 0 alone: cosine = a0 / |a| at each position.
  const torch::Tensor cos = (a.select(1, 0) / a.norm(2, {1}).clamp_min(1e-8)).mean({1, 2});
  EXPECT_TRUE(test::AllClose(value("direction(conv, [2, 0, 0, 0])"), cos, 1e-9));
}

TEST(Objective, DiversityOfEqualAndOrthogonalSamples) {
  const torch::Tensor a = torch::rand({1, 3, 4, 4}, torch::kFloat64);
  // Two equal samples: their Gram matrices have cosine 1; -(sum of off-diagonal) / batch = -1.
  EXPECT_NEAR(optvis::Diversity(torch::cat({a, a})).item<double>(), -1.0, 1e-12);
  // Samples active in different channels only: orthogonal Gram matrices.
  torch::Tensor b = torch::zeros({2, 2, 3, 3}, torch::kFloat64);
  b[0][0].fill_(1);
  b[1][1].fill_(2);
  EXPECT_NEAR(optvis::Diversity(b).item<double>(), 0.0, 1e-12);
  EXPECT_EQ(optvis::Diversity(a).item<double>(), 0.0);
}

TEST(Param, StartingFromAPictureRendersIt) {
  const torch::Tensor picture = torch::rand({2, 3, 5, 7}, torch::kFloat64) * 0.9 + 0.05;
  for (const std::string valid : {"sigmoid", "clamp"})
    for (bool decorrelate : {true, false}) {
      optvis::ParamOptions o;
      o.valid = valid;
      o.decorrelate = decorrelate;
      o.dtype = torch::kFloat64;
      optvis::ImageParam param(o, picture);
      EXPECT_TRUE(test::AllClose(param.Render(), picture, 1e-9)) << valid << decorrelate;
    }
}

TEST(Param, FftRendersOddAndEvenSizesInRange) {
  for (auto [h, w] : {std::pair<int64_t, int64_t>{7, 9}, {8, 8}, {16, 11}}) {
    optvis::ParamOptions o;
    o.batch = 2;
    o.height = h;
    o.width = w;
    const torch::Tensor r = optvis::ImageParam(o).Render();
    EXPECT_EQ(r.sizes().vec(), (std::vector<int64_t>{2, 3, h, w}));
    EXPECT_GE(r.min().item<double>(), 0.0);
    EXPECT_LE(r.max().item<double>(), 1.0);
  }
  // Seeded: the same seed gives the same start.
  optvis::ParamOptions o;
  o.seed = 5;
  EXPECT_TRUE(optvis::ImageParam(o).Render().equal(optvis::ImageParam(o).Render()));
}

TEST(Transform, NoneIsTheIdentityAndStandardStaysInRange) {
  const torch::Tensor x = torch::rand({2, 3, 9, 9}, torch::kFloat64);
  optvis::Transform none(optvis::TransformOptions::None(), 0);
  EXPECT_TRUE(test::AllClose(none(x), x, 1e-12));
  optvis::TransformOptions standard = optvis::TransformOptions::Standard();
  standard.out_height = 20;
  standard.out_width = 24;
  optvis::Transform t(standard, 1);
  const torch::Tensor y = t(x);
  EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, 3, 20, 24}));
  EXPECT_GE(y.min().item<double>(), 0.0);
  EXPECT_LE(y.max().item<double>(), 1.0);
  // The grey pad (0.5) shows at the border of a black picture.
  const torch::Tensor z = t(torch::zeros({1, 3, 9, 9}, torch::kFloat64));
  EXPECT_GT(z.max().item<double>(), 0.3);
}

// The row-sliced sampler of small CPU batches equals grid_sample, values and input gradients,
// also for rows that do not split evenly.
TEST(Transform, RowSlicedSamplingEqualsGridSample) {
  namespace F = torch::nn::functional;
  for (const int64_t n : {1, 3}) {
    const torch::Tensor x = torch::rand({n, 3, 11, 13}, torch::kFloat64).requires_grad_(true);
    const torch::Tensor theta = torch::tensor({0.9, 0.2, 0.05, -0.15, 1.1, -0.1}, torch::kFloat64).view({1, 2, 3}).expand({n, 2, 3});
    const torch::Tensor grid = F::affine_grid(theta, {n, 3, 23, 17}, /*align_corners=*/true);
    const torch::Tensor weights = torch::rand({n, 3, 23, 17}, torch::kFloat64);
    const torch::Tensor y = optvis::BilinearSample(x, grid);
    const torch::Tensor dy = torch::autograd::grad({(y * weights).sum()}, {x})[0];
    const torch::Tensor z = F::grid_sample(x, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true));
    const torch::Tensor dz = torch::autograd::grad({(z * weights).sum()}, {x})[0];
    EXPECT_TRUE(test::AllClose(y, z, 1e-12)) << n;
    EXPECT_TRUE(test::AllClose(dy, dz, 1e-12)) << n;
  }
}

// An animation keeps small frames of a large picture: at most kAnimationSide on the longer side,
// the aspect kept, the picture itself full size.
TEST(Optimize, KeepsAnimationFramesSmall) {
  optvis::ParamOptions po;
  po.space = "pixel";
  po.height = 20;
  po.width = 1300;
  optvis::ImageParam param(po);
  optvis::OptimizeOptions oo;
  oo.steps = 2;
  oo.progress = "none";
  oo.frames = 2;
  const auto r = optvis::Optimize(param, [](const torch::Tensor& p) { return p.mean({1, 2, 3}); }, oo);
  ASSERT_EQ(r.frames.size(), 3u);
  for (const auto& f : r.frames) EXPECT_EQ(f.sizes().vec(), (std::vector<int64_t>{1, 3, 10, optvis::kAnimationSide}));
  EXPECT_EQ(r.picture.sizes().vec(), (std::vector<int64_t>{1, 3, 20, 1300}));
  // Area-averaged: the frame's mean is the picture's.
  EXPECT_NEAR(r.frames.back().mean().item<double>(), r.picture.mean().item<double>(), 1e-3);
}

// L-BFGS keeps the history it is given: on an ill-conditioned quadratic, one pair and eight give
// the same first steps (one pair either way) and different iterates once a second pair exists.
TEST(Optimize, TakesTheLbfgsHistoryItIsGiven) {
  auto run = [](int64_t history) {
    optvis::ParamOptions po;
    po.space = "pixel";
    po.valid = "clamp";
    po.decorrelate = false;
    po.height = po.width = 4;
    po.dtype = torch::kFloat64;
    optvis::ImageParam param(po, torch::full({1, 3, 4, 4}, 0.5, torch::kFloat64));
    optvis::OptimizeOptions oo;
    oo.steps = 12;
    oo.progress = "none";
    oo.optimizer = "lbfgs";
    oo.lr = 0.05;
    oo.history = history;
    const torch::Tensor w = torch::logspace(-1, 1, 48, 10, torch::kFloat64).view({1, 3, 4, 4});
    return optvis::Optimize(param, [&](const torch::Tensor& p) { return -(w * (p - 0.3).pow(2)).sum({1, 2, 3}); }, oo).curve;
  };
  const std::vector<double> one = run(1), eight = run(8);
  ASSERT_EQ(one.size(), 12u);
  ASSERT_EQ(eight.size(), 12u);
  EXPECT_EQ(one[0], eight[0]);
  EXPECT_EQ(one[1], eight[1]);  // one pair either way after the first step
  EXPECT_GT(std::abs(one[3] - eight[3]), 1e-6 * std::abs(one[3]));
}

TEST(Optimize, AscendsALogitAndFlagsAConstantObjective) {
  test::LinearModel lin(3, 4, 4, 2);
  Model& m = *lin.model;
  optvis::ParamOptions po;
  po.space = "pixel";
  po.height = po.width = 4;
  po.dtype = torch::kFloat64;
  optvis::ImageParam param(po);
  optvis::OptimizeOptions oo;
  oo.steps = 50;
  oo.progress = "none";
  oo.thresholds = {10};
  oo.frames = 5;
  const auto r = optvis::Optimize(param, [&](const torch::Tensor& p) {
    return m.lens().Forward(p, {}).output.select(1, 1);
  }, oo);
  EXPECT_FALSE(r.constant);
  EXPECT_EQ(r.steps_done, 50);
  EXPECT_GT(r.curve.back(), r.curve.front() + 1.0);
  EXPECT_EQ(r.snapshot_steps, std::vector<int64_t>{10});
  EXPECT_EQ(r.frames.size(), 6u);  // the start and every 10 steps
  // The best picture for a linear logit saturates along the sign of its weights.
  const torch::Tensor w = lin.W[1].view({1, 3, 4, 4});
  EXPECT_GT(((r.picture - 0.5) * w).sum().item<double>(), 0);

  optvis::ImageParam param2(po);
  const auto constant = optvis::Optimize(param2, [&](const torch::Tensor& p) {
    return (p * 0).sum({1, 2, 3});
  }, oo);
  EXPECT_TRUE(constant.constant);
  EXPECT_LT(constant.steps_done, 50);

  optvis::ImageParam param3(po);
  const auto nan = optvis::Optimize(param3, [&](const torch::Tensor& p) {
    return p.sum({1, 2, 3}) * std::nan("");
  }, oo);
  EXPECT_NE(nan.stopped.find("NaN at step 1"), std::string::npos) << nan.stopped;
  EXPECT_TRUE(torch::isfinite(nan.picture).all().item<bool>());
}

TEST(Featurevis, RunsInFloat64OnAnyChannelCount) {
  test::CamNet net;  // 2-channel input, float64
  const auto outcome = test::RunTechnique("featurevis", *net.model, torch::Tensor(), 0,
                                          {{"objective", "conv:1 - 0.1*tv"}, {"steps", 6}, {"size", 8},
                                           {"transforms", "none"}, {"upsample", false}, {"frames", 0},
                                           {"progress", "none"}});
  const torch::Tensor picture = outcome.artifacts[0].tensor;
  EXPECT_EQ(picture.scalar_type(), torch::kFloat64);
  EXPECT_EQ(picture.sizes().vec(), (std::vector<int64_t>{1, 2, 8, 8}));
  const auto curve = outcome.metrics["objective_curve"].get<std::vector<double>>();
  ASSERT_EQ(curve.size(), 6u);
  EXPECT_GT(curve.back(), curve.front());
  // Where a step's time went: each part took some, and together no more than the steps did.
  const Json& step_ms = outcome.metrics["step_ms"];
  double parts = 0;
  for (const char* part : {"objective", "gradient", "optimizer"}) {
    ASSERT_TRUE(step_ms.contains(part)) << step_ms.dump();
    EXPECT_GT(step_ms[part].get<double>(), 0) << part;
    parts += step_ms[part].get<double>();
  }
  EXPECT_LE(parts * 6, 1000 * outcome.metrics["seconds"].get<double>() * (1 + 1e-9)) << outcome.metrics.dump();
}

int ReadGif(const std::string& bytes, std::vector<cv::Vec3b>* first_pixels) {
  struct Reader {
    const std::string* data;
    size_t pos = 0;
  } reader{&bytes};
  int error = 0;
  GifFileType* gif = DGifOpen(&reader, [](GifFileType* g, GifByteType* out, int n) {
    auto* r = static_cast<Reader*>(g->UserData);
    const int count = static_cast<int>(std::min<size_t>(static_cast<size_t>(n), r->data->size() - r->pos));
    std::memcpy(out, r->data->data() + r->pos, static_cast<size_t>(count));
    r->pos += static_cast<size_t>(count);
    return count;
  }, &error);
  if (!gif || DGifSlurp(gif) != GIF_OK) return -1;
  const int frames = gif->ImageCount;
  for (int f = 0; f < frames; ++f) {
    const SavedImage& img = gif->SavedImages[f];
    const ColorMapObject* map = img.ImageDesc.ColorMap ? img.ImageDesc.ColorMap : gif->SColorMap;
    const GifColorType c = map->Colors[img.RasterBits[0]];
    first_pixels->push_back(cv::Vec3b(c.Blue, c.Green, c.Red));
  }
  DGifCloseFile(gif, &error);
  return frames;
}

// Default style and content layers skip convolutions on a 1 x 1 map (squeeze-and-excitation's
// 1x1 convolutions after a global mean): the pretrained EfficientNet-B0 got one as a style layer
// and `netlens style` stopped with "has no spatial output". Here: eight 3x3 convolutions, each
// followed by an SE convolution on its mean; the defaults come from the eight.
TEST(Style, DefaultLayersSkipConvolutionsWithoutSpatialOutput) {
  torch::manual_seed(8);
  torch::jit::Module net("SeNet", test::SharedUnit(), true);
  std::string forward = "def forward(self, x):\n    h = x\n";
  for (int i = 0; i < 8; ++i) {
    for (const std::string kind : {"conv", "se"}) {
      torch::jit::Module conv("Conv2d", test::SharedUnit(), true);
      conv.register_parameter("weight", kind == "conv" ? torch::randn({3, 3, 3, 3}) : torch::randn({3, 3, 1, 1}), false);
      conv.define(kind == "conv" ? "def forward(self, x):\n    return torch.conv2d(x, self.weight, None, 1, 1)\n"
                                 : "def forward(self, x):\n    return torch.conv2d(x, self.weight)\n");
      net.register_module(kind + std::to_string(i), conv);
    }
    const std::string n = std::to_string(i);
    forward += "    h = torch.relu(self.conv" + n + ".forward(h))\n    h = h * torch.sigmoid(self.se" + n +
               ".forward(h.mean([2, 3], True)))\n";
  }
  net.define(forward + "    return h.mean([2, 3])\n");
  auto model = test::SaveAndLoad(net, 3, 8, 8);
  std::vector<std::string> content, style;
  DefaultStyleLayers(*model, content, style);
  // Five of the eight spread over the first 70% (0, 1.225, 2.45, 3.675, 4.9 rounded), content at 55%.
  EXPECT_EQ(style, (std::vector<std::string>{"conv0", "conv1", "conv2", "conv4", "conv5"}));
  EXPECT_EQ(content, (std::vector<std::string>{"conv4"}));
}

// On a model whose convolutions are each followed by an activation module (SqueezeNet 1.0), the
// default layers are the rectified outputs: with the convolutions' own outputs, SqueezeNet's style
// kept the photo's colours and moved an independent Gram measure less than half of the way to the
// painting (tools/style_measure.py; docs/performance.md, style defaults).
TEST(Style, DefaultLayersAreRectifiedOutputsWhereAnActivationModuleFollows) {
  auto model = test::SharedSqueezeNet("float32");
  ASSERT_TRUE(model) << "needs the shared SqueezeNet 1.0 at " << test::SharedModels();
  std::vector<std::string> content, style;
  DefaultStyleLayers(*model, content, style);
  // Convolutions 0, 4, 9, 13, 18 of 26 and 14 for content, each followed by its ReLU module.
  EXPECT_EQ(style, (std::vector<std::string>{"features.1", "features.4.squeeze_activation",
                                             "features.5.expand3x3_activation", "features.8.squeeze_activation",
                                             "features.9.expand3x3_activation"}));
  EXPECT_EQ(content, (std::vector<std::string>{"features.8.expand1x1_activation"}));
}

// The Gram style loss and its gradient (netlens computes the loss and its backward by hand, in
// one operation per layer) equal the formula written out with autograd's matrix product:
// scale * mean((F F^T / n - T)^2), for contiguous and channels-last activations; a channels-last
// one gets its gradient in its own layout (read as hw x C, no transposing copy).
TEST(Style, GramLossAndGradientEqualTheFormula) {
  for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
    auto g = at::detail::createCPUGenerator(3);
    const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    // 260 channels: the Gram matrix by syrk (from 256 on), else by a general product.
    const std::vector<torch::Tensor> style{torch::randn({1, 4, 5, 6}, g, opts).contiguous(format),
                                           torch::randn({1, 3, 2, 7}, g, opts),
                                           torch::randn({1, 260, 3, 4}, g, opts).contiguous(format)};
    const optvis::StyleTarget target = optvis::StyleStatistics(style, optvis::StyleMetric::kGram);
    std::vector<torch::Tensor> x{torch::randn({1, 4, 5, 6}, g, opts).contiguous(format).requires_grad_(),
                                 torch::randn({1, 3, 2, 7}, g, opts).contiguous(format).requires_grad_(),
                                 torch::randn({1, 260, 3, 4}, g, opts).contiguous(format).requires_grad_()};
    const std::vector<double> scales{1.5, 0.25, 3};
    const auto losses = optvis::StyleLosses(x, target, optvis::StyleMetric::kGram, g, scales);
    ASSERT_EQ(losses.size(), 3u);
    const auto grads = torch::autograd::grad({losses[0] + 2 * losses[1] + losses[2]}, {x[0], x[1], x[2]});
    std::vector<torch::Tensor> y;
    for (const auto& t : x) y.push_back(t.detach().contiguous().requires_grad_());
    torch::Tensor expected = torch::zeros({}, opts);
    for (size_t i = 0; i < 3; ++i) {
      const torch::Tensor fy = y[i].reshape({y[i].size(1), -1}), fs = style[i].reshape({style[i].size(1), -1});
      const torch::Tensor e =
          scales[i] * (torch::mm(fy, fy.t()) / fy.numel() - torch::mm(fs, fs.t()) / fs.numel()).pow(2).mean();
      EXPECT_NEAR(losses[i].item<double>(), e.item<double>(), 1e-14) << format;
      EXPECT_TRUE(test::AllClose(target.stats[i], torch::mm(fs, fs.t()) / fs.numel(), 1e-14)) << "both triangles";
      expected = expected + (i == 1 ? 2.0 : 1.0) * e;
    }
    const auto reference = torch::autograd::grad({expected}, y);
    for (size_t i = 0; i < 3; ++i) {
      const double size = reference[i].abs().max().item<double>();
      EXPECT_GT(size, 0) << i;
      EXPECT_TRUE(test::AllClose(grads[i], reference[i], 1e-11 * size)) << format << " layer " << i;
    }
    for (const auto& grad : grads) EXPECT_EQ(grad.suggest_memory_format(), format);
  }
}

// A smooth non-quadratic loss of two parameter tensors (one of them channels-last): sum of
// (A x - b)^2 / 2 + 0.1 sum log(cosh(x)) over their concatenation.
torch::Tensor LbfgsTestLoss(const std::vector<torch::Tensor>& params, const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor x = torch::cat({params[0].reshape({-1}), params[1].reshape({-1})});
  return 0.5 * (torch::mv(a, x) - b).pow(2).sum() + 0.1 * torch::log(torch::cosh(x)).sum();
}

// netlens' L-BFGS takes LibTorch's iterates (LBFGS with max_iter 1, no line search): 40 steps in
// float64 with a history of 5 (so that old pairs leave it), then the fused two-loop recursion
// against the recursion in tensor operations in float32 and float64.
TEST(Lbfgs, TakesLibTorchsStepsAndFusesTheRecursionExactly) {
  torch::manual_seed(11);
  const int64_t n = 2 * 3 * 7 * 5;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor a = torch::randn({n + 17, n}, opts) / std::sqrt(static_cast<double>(n)), b = torch::randn({n + 17}, opts);
  auto start = [&] {
    torch::manual_seed(12);
    return std::vector<torch::Tensor>{
        torch::randn({1, 3, 7, 5}, opts).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(),
        torch::randn({n - 105}, opts).requires_grad_()};
  };
  std::vector<torch::Tensor> mine = start(), theirs = start();
  theirs[0] = theirs[0].detach().contiguous().requires_grad_();  // LibTorch's flattens with view()
  optvis::Lbfgs lbfgs(mine, 0.8, 5);
  torch::optim::LBFGS reference(theirs, torch::optim::LBFGSOptions(0.8).max_iter(1).history_size(5));
  auto closure = [&](std::vector<torch::Tensor>& p) {
    return [&] {
      for (auto& t : p) t.mutable_grad() = torch::Tensor();
      torch::Tensor loss = LbfgsTestLoss(p, a, b);
      loss.backward();
      return loss.detach();
    };
  };
  const double first = LbfgsTestLoss(mine, a, b).item<double>();
  for (int step = 0; step < 40; ++step) {
    lbfgs.Step(closure(mine));
    reference.step(closure(theirs));
    for (size_t i = 0; i < mine.size(); ++i)
      ASSERT_LT((mine[i] - theirs[i]).abs().max().item<double>(), 1e-10) << "step " << step << " tensor " << i;
  }
  EXPECT_LT(LbfgsTestLoss(mine, a, b).item<double>(), first / 5);

  // The same problem in float32, for a history in float32.
  std::vector<torch::Tensor> single{mine[0].detach().to(torch::kFloat32).requires_grad_(),
                                    mine[1].detach().to(torch::kFloat32).requires_grad_()};
  optvis::Lbfgs lbfgs32(single, 0.8, 5);
  const torch::Tensor a32 = a.to(torch::kFloat32), b32 = b.to(torch::kFloat32);
  for (int step = 0; step < 12; ++step)
    lbfgs32.Step([&] {
      for (auto& t : single) t.mutable_grad() = torch::Tensor();
      torch::Tensor loss = LbfgsTestLoss(single, a32, b32);
      loss.backward();
      return loss.detach();
    });
  for (optvis::Lbfgs* l : {&lbfgs, &lbfgs32}) {
    const auto dtype = l == &lbfgs ? torch::kFloat64 : torch::kFloat32;
    const torch::Tensor g = torch::randn({n}, opts).to(dtype);
    const torch::Tensor fused = l->Direction(g, true), plain = l->Direction(g, false);
    const double scale = plain.abs().max().item<double>();
    EXPECT_LT((fused - plain).abs().max().item<double>(), (dtype == torch::kFloat64 ? 1e-12 : 1e-5) * scale) << dtype;
    EXPECT_GT((fused + g).abs().max().item<double>(), 1e-3 * scale) << "the history took part";
  }
}

TEST(Gif, EncodesFramesThatDecodeBack) {
  std::vector<cv::Mat> frames{cv::Mat(10, 12, CV_8UC3, cv::Scalar(255, 0, 0)),
                              cv::Mat(10, 12, CV_8UC3, cv::Scalar(0, 200, 30))};
  const std::string bytes = GifBytes(frames);
  ASSERT_EQ(bytes.substr(0, 6), "GIF89a");
  std::vector<cv::Vec3b> pixels;
  ASSERT_EQ(ReadGif(bytes, &pixels), 2);
  for (int f = 0; f < 2; ++f)
    for (int ch = 0; ch < 3; ++ch)
      EXPECT_NEAR(pixels[static_cast<size_t>(f)][ch], frames[static_cast<size_t>(f)].at<cv::Vec3b>(0, 0)[ch], 8);
}

}  // namespace
}  // namespace netlens
