#include "netlens/runner/common_options.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "netlens/core/log.h"
#include "netlens/model/libtorch.h"

namespace netlens {

const OptionTable& CommonOptions() {
  static const OptionTable table{
      {"model", OptionType::kString, "TorchScript model file (.pt)", nullptr, {}, {}, {}, true, "FILE", true},
      {"image", OptionType::kStringList,
       "input image file(s): PNG, JPEG, BMP, WebP (required unless the technique takes none)",
       nullptr, {}, {}, {}, false, "FILE", true},
      {"out", OptionType::kString, "output folder", "netlens_out", {}, {}, {}, false, "DIR", true},
      {"name", OptionType::kString, "task name (its output subfolder in a task file)"},
      {"target", OptionType::kStringList,
       "class(es) to explain: index, label name (or unique prefix), or topK; default top1"},
      {"device", OptionType::kString, "auto, cpu, cuda or cuda:N (auto: CUDA when available)",
       "auto"},
      {"dtype", OptionType::kString, "computation precision", "float32", {"float32", "float64"}},
      {"threads", OptionType::kInt, "CPU threads, 0 = OMP_NUM_THREADS if set, else all cores", 0, {}, 0.0, 4096.0},
      {"smooth_activations", OptionType::kBool,
       "guided and deconvnet rules also for SiLU, GELU, Hardswish, ELU, LeakyReLU, Mish, ... "
       "(netlens' generalization, docs/techniques.md; default: only ReLU-like ones, as Captum)",
       false},
      {"input_size", OptionType::kIntList, "model input size: N or H,W (default: from metadata)",
       nullptr, {}, 1.0, 8192.0, false, "H,W"},
      {"channels", OptionType::kInt, "model input channels (default: from metadata)", nullptr, {},
       1.0, 3.0},
      {"channel_order", OptionType::kString, "channel order of the model input", nullptr,
       {"rgb", "bgr", "gray"}},
      {"mean", OptionType::kFloatList, "normalization mean per channel, for x/255 inputs"},
      {"std", OptionType::kFloatList, "normalization std per channel, for x/255 inputs"},
      {"crop_pct", OptionType::kFloat, "resize crop: shorter side to size / crop_pct", nullptr, {},
       0.05, 1.0},
      {"labels", OptionType::kString, "labels file, one class name per line", nullptr, {}, {}, {},
       false, "FILE", true},
      {"resize", OptionType::kString, "how images are brought to the input size", "crop",
       {"crop", "fit", "none"}},
      {"max_pixels", OptionType::kInt,
       "with --resize none: scale larger images down to this many pixels (aspect kept)", nullptr,
       {}, 1.0, 1e12, false, "N"},
      {"memory_limit", OptionType::kString,
       "refuse runs estimated to need more: auto (80% of available memory on CPU), off, or a size "
       "like 8G", "auto", {}, {}, {}, false, "SIZE"},
      {"batch_images", OptionType::kInt,
       "images per pass for the techniques that run many at once (saliency, guided, deconvnet, "
       "input-x-gradient, gradcam, gradcam++, xgradcam, layercam, hirescam), over the jobs that "
       "differ only in their image; 0: as many as the memory budget allows, at most 16; 1: one at a time",
       0, {}, 0.0, 4096.0, false, "N"},
      {"outlier_percent", OptionType::kFloat,
       "rendering: clip the top % of |attribution| mass (Captum's outlier_perc)", 2.0, {}, 0.0,
       50.0},
      {"report", OptionType::kBool,
       "also write report.html: every result of the run on one self-contained page", false},
      {"log_level", OptionType::kString, "log verbosity", "info",
       {"trace", "debug", "info", "warn", "error", "off"}},
  };
  return table;
}

ModelRequest ModelRequestFrom(const Params& params) {
  ModelRequest request;
  request.path = params.Str("model");
  request.device = params.Str("device");
  request.dtype = params.Str("dtype");
  request.smooth_activations = params.Bool("smooth_activations");
  for (const char* key : {"input_size", "channels", "channel_order", "mean", "std", "crop_pct",
                          "labels"}) {
    if (params.IsSet(key)) request.overrides[key] = params.values().at(key);
  }
  return request;
}

}  // namespace netlens

namespace netlens {

int64_t UseCpuThreads(const Params& params) {
  int64_t threads = params.Int("threads");
  const char* from = "--threads";
  if (threads <= 0) {
    // Taken only as --threads would be: a whole number in the option's range (1 to 4096).
    const char* env = std::getenv("OMP_NUM_THREADS");
    char* end = nullptr;
    const long value = env != nullptr ? std::strtol(env, &end, 10) : 0;
    if (env != nullptr && end != env && *end == '\0' && value >= 1 && value <= 4096) {
      threads = value;
      from = "OMP_NUM_THREADS";
    } else {
      if (env != nullptr && *env != '\0')
        Log().warn("OMP_NUM_THREADS={} is not a thread count from 1 to 4096: using all cores (or give --threads)", env);
      threads = std::max(1u, std::thread::hardware_concurrency());
      from = "all cores";
    }
  }
  if (torch::get_num_threads() != threads) {
    torch::set_num_threads(static_cast<int>(threads));
    Log().debug("using {} CPU threads ({})", threads, from);
  }
  return threads;
}

}  // namespace netlens
