#include "netlens/runner/bench.h"
#include "netlens/core/json_text.h"

#include "netlens/model/libtorch.h"
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <unistd.h>

#include <opencv2/imgcodecs.hpp>

#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/image_io.h"
#include "netlens/optvis/lbfgs.h"
#include "netlens/optvis/optimize.h"
#include "netlens/optvis/style.h"
#include "netlens/runner/common_options.h"
#include "netlens/runner/runner.h"
#include "netlens/techniques/cam.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/deeplift.h"
#include "netlens/techniques/optvis_family.h"
#include "netlens/techniques/rectifier_report.h"
#include "netlens/techniques/registry.h"

namespace netlens {
namespace {

// Medians of `repeat` timings of a technique and of its floor, taken in turns (technique,
// floor, technique, ...) so that a slow spell of a shared machine weighs on both alike.
std::pair<double, double> TimeMs(const std::function<void()>& fn, const std::function<void()>& floor_fn,
                                 int64_t repeat) {
  std::vector<double> times, floor_times;
  // CUDA work is queued asynchronously: each timing waits for the device to finish.
  const bool cuda = torch::cuda::is_available();
  auto time = [cuda](const std::function<void()>& f) {
    if (cuda) torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    f();
    if (cuda) torch::cuda::synchronize();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  for (int64_t i = 0; i < repeat; ++i) {
    times.push_back(time(fn));
    floor_times.push_back(time(floor_fn));
  }
  auto median = [](std::vector<double>& v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {median(times), median(floor_times)};
}

struct Case {
  std::string technique;
  Json options;
  std::string floor;  // description of the floor
  // One untimed run first, which builds and caches the rewritten graphs: the single-pass cases,
  // whose few timed runs that one-time cost would otherwise weigh on.
  bool warm_up = false;
  bool new_reference = false;  // DeepLIFT: forget the reference's recorded pass before each run
  // Parts of the technique's work timed alone and set against the same floor (style: the Gram
  // products; L-BFGS's directions with a full history), where they show what the floor leaves out.
  std::vector<std::pair<std::string, std::function<void()>>> parts;
};

}  // namespace

const OptionTable& BenchOptions() {
  static const OptionTable table = [] {
    OptionTable t;
    for (const auto& spec : CommonOptions())
      if (spec.key != "out" && spec.key != "name" && spec.key != "target") t.push_back(spec);
    t.push_back({"cam_layers", OptionType::kStringList, "layers of the N-layer CAM case; default: the last 3 convolutions"});
    t.push_back({"repeat", OptionType::kInt, "runs per measurement (the median is reported)", 3, {}, 1.0, 100.0});
    t.push_back({"only", OptionType::kStringList, "benchmark only these techniques"});
    t.push_back({"featurevis_layer", OptionType::kString, "layer of the featurevis cases; default: the CAM layer"});
    return t;
  }();
  return table;
}

int RunBench(const Params& p) {
  SetLogLevel(p.Str("log_level"));
  const int64_t threads = UseCpuThreads(p);
  Runner runner("", Json::object());
  Json common = p.values();
  for (const char* key : {"cam_layers", "repeat", "only", "featurevis_layer"}) common.erase(key);
  // Repeated passes: gradients at layers run the model up to them frozen, as in a batch of jobs.
  auto model = runner.GetModel(Params({&CommonOptions()}, common), /*many_passes=*/true);
  const InputImage input = PrepareInput(p.Strs("image")[0], *model, ParseResizePolicy(p.Str("resize")));
  const torch::Tensor& x = input.tensor;
  const int64_t target = model->Logits(x).argmax(1).item<int64_t>();
  std::vector<std::string> convs;
  for (const auto& l : model->lens().layers())
    if (l.capturable && StartsWith(l.type, "Conv") && l.shape.size() == 4) convs.push_back(l.path);
  std::vector<std::string> cam_layers = p.IsSet("cam_layers") ? p.Strs("cam_layers") : std::vector<std::string>{};
  if (cam_layers.empty())
    for (size_t i = convs.size() >= 3 ? convs.size() - 3 : 0; i < convs.size(); ++i) cam_layers.push_back(convs[i]);
  // Score-/Ablation-CAM cost one forward per channel: use the last convolution with at most 512
  // channels (SqueezeNet's classifier conv has 1000).
  std::string last = model->lens().Resolve("last-conv");
  for (const auto& path : convs)
    if (model->lens().Info(path).shape.at(1) <= 512) last = path;
  const int64_t channels = model->lens().Info(last).shape.at(1);
  const int64_t repeat = p.Int("repeat");
  auto fb = [&](int64_t n, int64_t batch) {  // n samples' forward+backward in batches
    BatchedInputGradients(*model, x.expand({n, -1, -1, -1}).contiguous(), target, BackwardRule::kVanilla, batch);
  };
  auto fwd = [&](int64_t n, int64_t batch) {
    torch::NoGradGuard no_grad;
    BatchedLogits(*model, x.expand({n, -1, -1, -1}).contiguous(), batch);
  };
  const int64_t H = x.size(2), W = x.size(3);
  // Featurevis: 32 steps of Lucid's defaults (128 x 128 resampled to the input size) for one
  // channel and for 16 as one batch; the floor is 32 forward+backward passes of such a batch to
  // the layer (what a step cannot avoid).
  const std::string fv_layer = p.IsSet("featurevis_layer") ? model->lens().Resolve(p.Str("featurevis_layer")) : last;
  const int64_t fv_steps = 32;
  auto fv_floor = [&](int64_t n) {
    torch::Tensor z = torch::randn({n, x.size(1), H, W}, x.options());
    if (z.is_cpu() && z.scalar_type() == torch::kFloat32) z = z.contiguous(torch::MemoryFormat::ChannelsLast);
    z.requires_grad_(true);
    for (int64_t i = 0; i < fv_steps; ++i) {
      const auto a = model->lens().Forward(z, {fv_layer}, BackwardRule::kVanilla, false).activations[0];
      torch::autograd::grad({a.select(1, 0).mean()}, {z});
    }
  };
  const std::vector<std::string> only = p.IsSet("only") ? p.Strs("only") : std::vector<std::string>{};
  auto selected = [&](const std::string& technique) {
    return only.empty() || std::find(only.begin(), only.end(), technique) != only.end();
  };
  // Style transfer: 32 L-BFGS steps (one loss evaluation each) of the bench image at 224 pixels
  // on its longer side in the style of its colour negative (written to a temporary file, removed
  // at the end); the floor is 32 forward+backward passes of such a picture to the deepest of the
  // default layers. Prepared only when the style case runs.
  const std::string style_image = (std::filesystem::temp_directory_path() /
                                   ("netlens_bench_style_" + std::to_string(::getpid()) + ".png")).string();
  struct RemoveFile {
    std::string path;
    ~RemoveFile() { std::error_code ec; std::filesystem::remove(path, ec); }
  } remove_style_image{style_image};
  const int64_t style_size = 224, style_steps = 32;
  std::vector<std::string> style_floor_layers;  // the default content and style layers
  size_t style_count = 0;                        // the style layers: the last of them
  torch::Tensor style_input;
  std::vector<torch::Tensor> style_seeds, gram_inputs;
  optvis::StyleTarget gram_target;
  if (selected("style")) {
    cv::imwrite(style_image, cv::Scalar::all(255) - ReadImage(p.Strs("image")[0]));
    std::vector<std::string> style_layers;
    DefaultStyleLayers(*model, style_floor_layers, style_layers);
    style_floor_layers.insert(style_floor_layers.end(), style_layers.begin(), style_layers.end());
    style_count = style_layers.size();
    style_input = ToModelInputOf(LoadStylePicture(p.Strs("image")[0], style_size, *model), *model);
    // The floor's backward starts from dense gradients at the layers, as a step's losses give them
    // (random, drawn once). Seeded with the layers' means instead, it got broadcast gradients, which
    // the convolutions' backward copies out first: a floor about a tenth slower than the real one.
    torch::NoGradGuard no_grad;
    auto generator = at::detail::createCPUGenerator(1);
    const auto acts = model->lens().Forward(style_input, style_floor_layers, BackwardRule::kVanilla, false).activations;
    for (const auto& a : acts)
      style_seeds.push_back(torch::randn(a.sizes(), generator, a.options().device(torch::kCPU))
                                .to(a.device())
                                .contiguous(a.suggest_memory_format()));
    gram_inputs.assign(acts.end() - static_cast<std::ptrdiff_t>(style_count), acts.end());
    std::vector<torch::Tensor> halves;
    for (const auto& a : gram_inputs) halves.push_back(a * 0.5);
    gram_target = optvis::StyleStatistics(halves, optvis::StyleMetric::kGram);
  }
  auto style_floor = [&] {
    const torch::Tensor z = style_input.clone().requires_grad_(true);
    for (int64_t i = 0; i < style_steps; ++i)
      torch::autograd::grad(model->lens().Forward(z, style_floor_layers, BackwardRule::kVanilla, false).activations, {z},
                            style_seeds);
  };
  // What a step cannot avoid beyond the floor either: the Gram matrices' loss and gradient at the
  // style layers, on the floor's activations (a target of half their Gram matrices).
  auto style_gram = [&] {
    auto generator = at::detail::createCPUGenerator(1);
    for (int64_t i = 0; i < style_steps; ++i) {
      std::vector<torch::Tensor> x;
      for (const auto& a : gram_inputs) x.push_back(a.detach().requires_grad_(true));
      torch::Tensor total = torch::zeros({}, style_input.options());
      for (const auto& l : optvis::StyleLosses(x, gram_target, optvis::StyleMetric::kGram, generator)) total = total + l;
      torch::autograd::grad({total}, x);
    }
  };
  // L-BFGS's direction over a full history, for a picture of the style case's size: the history
  // filled once (on a quadratic with positive curvature, so that every pair is kept), then 32
  // directions from one gradient. Prepared at its first timing.
  std::unique_ptr<optvis::Lbfgs> full_history;
  torch::Tensor direction_gradient;
  auto style_directions = [&] {
    if (!full_history) {
      torch::Tensor picture = torch::rand(style_input.sizes(), style_input.options().memory_format(torch::MemoryFormat::Contiguous))
                                  .requires_grad_(true);
      const torch::Tensor curvature = torch::rand_like(picture) + 0.5;
      full_history = std::make_unique<optvis::Lbfgs>(std::vector<torch::Tensor>{picture}, 0.1, optvis::kLbfgsHistory);
      for (int64_t i = 0; i <= optvis::kLbfgsHistory; ++i)
        full_history->Step([&] {
          torch::NoGradGuard no_grad;
          picture.mutable_grad() = curvature * picture;
          return (curvature * picture * picture).sum() / 2;
        });
      direction_gradient = torch::randn_like(picture).flatten();
    }
    for (int64_t i = 0; i < style_steps; ++i) full_history->Direction(direction_gradient);
  };
  const int64_t occlusions = ((H - 32 + 15) / 16 + 1) * ((W - 32 + 15) / 16 + 1);
  // Superpixel techniques on 49 grid tiles (the mask tools/bench_captum.py gives Captum): k + 1
  // forwards, and 256 samples.
  const int64_t side = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(H * W) / 49)));
  const int64_t tiles = ((H + side - 1) / side) * ((W + side - 1) / side);
  const char* const kDeepLiftFloor = "2 fwd + 1 bwd (1 fwd, 1 fwd+bwd)";
  const bool deeplift_one_backward = selected("deeplift") && DeepLiftOneBackward(*model);
  std::vector<std::pair<Case, std::function<void()>>> cases{
      {{"saliency", {}, "1 fwd+bwd", true}, [&] { fb(1, 1); }},
      {{"guided", {}, "1 fwd+bwd", true}, [&] { fb(1, 1); }},
      {{"gradcam", {{"layer", cam_layers}}, "1 fwd+bwd", true}, [&] { fb(1, 1); }},
      {{"gradcam++", {{"layer", cam_layers}}, "1 fwd+bwd", true}, [&] { fb(1, 1); }},
      // A first job (the reference's pass recorded) and a next one against the same reference;
      // where the model runs the pairs' batch (no pass kept), a next job has the first's floor.
      {{"deeplift", {}, kDeepLiftFloor, true, true}, [&] { fwd(1, 1); fb(1, 1); }},
      {{"deeplift", {}, deeplift_one_backward ? "1 fwd+bwd" : kDeepLiftFloor, true},
       [&] { deeplift_one_backward ? fb(1, 1) : (fwd(1, 1), fb(1, 1)); }},
      {{"lrp", {}, "1 fwd+bwd", true}, [&] { fb(1, 1); }},
      {{"lrp", {{"composite", "epsilon-gamma-box"}}, "1 fwd+bwd", true}, [&] { fb(1, 1); }},
      {{"smoothgrad", {{"samples", 50}, {"batch_size", 16}}, "50 fwd+bwd in batches of 16"}, [&] { fb(50, 16); }},
      {{"integrated-gradients", {{"steps", 50}, {"batch_size", 16}}, "50 fwd+bwd in batches of 16"}, [&] { fb(50, 16); }},
      {{"occlusion", {{"window", 32}, {"stride", 16}, {"batch_size", 32}}, std::to_string(occlusions) + " fwd in batches of 32"},
       [&] { fwd(occlusions, 32); }},
      {{"scorecam", {{"layer", last}, {"batch_size", 32}}, std::to_string(channels) + " fwd in batches of 32"},
       [&] { fwd(channels, 32); }},
      {{"ablationcam", {{"layer", last}, {"batch_size", 32}}, std::to_string(channels) + " fwd in batches of 32"},
       [&] { fwd(channels, 32); }},
      {{"feature-ablation", {{"segmentation", "grid"}, {"segments", 49}, {"batch_size", 32}},
        std::to_string(tiles + 1) + " fwd in batches of 32"}, [&] { fwd(tiles + 1, 32); }},
      {{"kernel-shap", {{"segmentation", "grid"}, {"segments", 49}, {"samples", 256}, {"batch_size", 32}},
        "256 fwd in batches of 32"}, [&] { fwd(256, 32); }},
      {{"lime", {{"segmentation", "grid"}, {"segments", 49}, {"samples", 256}, {"batch_size", 32}},
        "256 fwd in batches of 32"}, [&] { fwd(256, 32); }},
      {{"evaluate", {{"techniques", {"gradcam"}}, {"steps", 50}, {"batch_size", 32}},
        "gradcam's fwd+bwd + 2 x 51 fwd in batches of 32"}, [&] { fb(1, 1); fwd(51, 32); fwd(51, 32); }},
      {{"featurevis", {{"objective", fv_layer + ":1"}, {"steps", fv_steps}, {"frames", 0}, {"progress", "none"}},
        "32 fwd+bwd to the layer, batch 1"}, [&] { fv_floor(1); }},
      {{"featurevis", {{"objective", fv_layer + ":0..15"}, {"steps", fv_steps}, {"frames", 0}, {"progress", "none"}},
        "32 fwd+bwd to the layer, batch 16"}, [&] { fv_floor(16); }},
      {{"style", {{"content", p.Strs("image")[0]}, {"style", Json::array({style_image})}, {"size", style_size}, {"steps", style_steps},
                  {"frames", 0}, {"progress", "none"}},
        "32 fwd+bwd to the deepest style layer", false, false,
        {{"its Gram products alone: 32 x loss and gradient at the style layers", style_gram},
         {"L-BFGS's directions alone with a full history of " + std::to_string(optvis::kLbfgsHistory) +
              " pairs (every step after a run's " + std::to_string(optvis::kLbfgsHistory) +
              "th; the 32 above average 16): 32 x",
          style_directions}}}, [&] { style_floor(); }},
  };
  // A transformer: CAMs at the default layer (no options: the deepest norm whose patches reach the
  // target, from one pass over the candidates) and the attention maps.
  if (!TransformerCamCandidates(*model).empty()) {
    cases.push_back({{"gradcam", {}, "1 fwd+bwd", true}, [&] { fb(1, 1); }});
    cases.push_back({{"layercam", {}, "1 fwd+bwd", true}, [&] { fb(1, 1); }});
    cases.push_back({{"attention-rollout", {}, "1 fwd", true}, [&] { fwd(1, 1); }});
    cases.push_back({{"transformer-attribution", {}, "1 fwd+bwd", true}, [&] { fb(1, 1); }});
  }
  std::cout << "model " << model->path() << ", input 1x" << x.size(1) << "x" << H << "x" << W << ", "
            << threads << " threads, device " << model->device().str() << ", dtype " << p.Str("dtype")
            << ", median of " << repeat << "\n"
            << "N-layer CAM layers: " << Join(cam_layers, ", ") << "\n\n"
            << "| technique | options | time ms | floor | floor ms | ratio |\n|---|---|---|---|---|---|\n";
  for (const auto& [c, floor_fn] : cases) {
    if (!selected(c.technique)) continue;
    const TechniqueInfo& t = FindTechnique(c.technique);
    Diagnostics diag;
    Params params({&CommonOptions(), &t.options}, ValidateObject(c.options.is_null() ? Json::object() : c.options, {&t.options}, "", nullptr, diag));
    diag.ThrowIfAny();
    // The image-optimization techniques also report their loop's own time (metrics.seconds):
    // the steps without the setup before them (loading the pictures, the targets' passes).
    std::vector<double> loop_ms, update_ms;  // and of that, the optimizer's updates (metrics.step_ms)
    auto run = [&] {
      if (c.new_reference) ForgetDeepLiftReferences();
      TechniqueContext ctx{*model, input, target, params};
      t.run(ctx);
      if (ctx.metrics.contains("seconds")) loop_ms.push_back(1000 * ctx.metrics["seconds"].get<double>());
      if (ctx.metrics.contains("step_ms"))
        update_ms.push_back(ctx.metrics["step_ms"]["optimizer"].get<double>() * ctx.metrics["steps"].get<double>());
    };
    if (c.warm_up) {
      run();
      floor_fn();
    }
    loop_ms.clear();
    update_ms.clear();
    const auto [ms, floor_ms] = TimeMs(run, floor_fn, repeat);
    const std::string options = (c.options.is_null() ? "" : SafeDump(c.options)) + (c.new_reference ? " new reference" : "");
    char line[768];
    std::snprintf(line, sizeof(line), "| %s | %s | %.1f | %s | %.1f | %.2f |\n", c.technique.c_str(), options.c_str(), ms,
                  c.floor.c_str(), floor_ms, ms / floor_ms);
    std::cout << line;
    if (!loop_ms.empty()) {
      std::sort(loop_ms.begin(), loop_ms.end());
      const double steps_ms = loop_ms[loop_ms.size() / 2];
      std::snprintf(line, sizeof(line), "| %s | the same, its steps only (setup excluded) | %.1f | %s | %.1f | %.2f |\n",
                    c.technique.c_str(), steps_ms, c.floor.c_str(), floor_ms, steps_ms / floor_ms);
      std::cout << line;
    }
    if (!update_ms.empty()) {
      std::sort(update_ms.begin(), update_ms.end());
      std::snprintf(line, sizeof(line), "| %s | of its steps, the optimizer's updates (%s) | %.1f | %s | %.1f | %.2f |\n",
                    c.technique.c_str(), params.Str("optimizer").c_str(), update_ms[update_ms.size() / 2], c.floor.c_str(),
                    floor_ms, update_ms[update_ms.size() / 2] / floor_ms);
      std::cout << line;
    }
    for (const auto& [what, part] : c.parts) {
      const double part_ms = TimeMs(part, [] {}, repeat).first;
      std::snprintf(line, sizeof(line), "| %s | %s | %.1f | %s | %.1f | %.2f |\n", c.technique.c_str(), what.c_str(),
                    part_ms, c.floor.c_str(), floor_ms, part_ms / floor_ms);
      std::cout << line;
    }
    std::cout << std::flush;
  }
  return 0;
}

}  // namespace netlens
