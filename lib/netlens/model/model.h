// A loaded TorchScript classifier: the module on its device and dtype, its metadata (input size,
// channel order, normalization, labels) and where each piece came from, and its lens.
#pragma once

#include "netlens/model/libtorch.h"

#include <memory>
#include <string>
#include <vector>

#include "netlens/core/options.h"
#include "netlens/model/lens.h"

namespace netlens {

struct ModelMetadata {
  std::string name;
  int64_t height = 224;
  int64_t width = 224;
  int64_t channels = 3;
  std::string channel_order = "rgb";  // rgb | bgr | gray
  std::vector<double> mean{0.485, 0.456, 0.406};
  std::vector<double> std{0.229, 0.224, 0.225};
  double crop_pct = 0.875;  // resize the shorter side to size / crop_pct, then centre-crop
  std::vector<std::string> labels;
  std::string source = "ImageNet defaults";  // where the metadata came from
  std::string labels_source = "none";
};

// What a user may say about a model (flags or task-file keys); empty fields: not said.
struct ModelRequest {
  std::string path;
  std::string device = "auto";   // auto | cpu | cuda | cuda:N
  std::string dtype = "float32";  // float32 | float64
  Json overrides = Json::object();  // input_size, channels, channel_order, mean, std, crop_pct, labels
  bool smooth_activations = false;  // guided/deconvnet rules for SiLU, GELU, ... too (Lens)
};

// "auto" -> cuda when available, else cpu. Throws UsageError for a malformed or absent device.
torch::Device ResolveDevice(const std::string& name);

class Model {
 public:
  // Loads, moves to device and dtype, sets eval mode, resolves metadata, builds the lens.
  // Throws UsageError for a missing or non-TorchScript file.
  static std::shared_ptr<Model> Load(const ModelRequest& request);

  const std::string& path() const { return path_; }
  const ModelMetadata& meta() const { return meta_; }
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  Lens& lens() { return *lens_; }
  // The TorchScript module. Its parameter tensors are shared with every pass (the lens and the
  // plain module read them at run time), so writing them in place changes the model; call
  // ParametersChanged() afterwards.
  torch::jit::Module& module() { return module_; }
  // Drops the frozen copies (the inference copy and the lens' frozen prefixes hold the parameters
  // as constants); later passes freeze the changed module again.
  void ParametersChanged() {
    ++parameters_generation_;
    inference_ = torch::jit::Module();
    inference_tried_ = false;
    inference_ok_ = false;
    lens_->DropFrozen();
  }
  // The plan runs many one-image passes through this model (several jobs): freezing pays off, so
  // gradients at layers (Lens::ForwardForLayerGradients) run what precedes the layers frozen from
  // the first call. Off (one job), they use the plain module, as float64 always does. Decided per
  // plan, so that a shard computes what the whole run computes, bit for bit.
  // Counts ParametersChanged(): what was computed from the parameters under another count is stale.
  uint64_t parameters_generation() const { return parameters_generation_; }
  void SetManyPasses(bool on) { lens_->SetFreezePrefixes(on); }
  int64_t num_classes() const { return num_classes_; }

  // Estimated peak memory in bytes of one pass on a batch x C x height x width input: the sum of
  // the layer outputs (measured on the probe input at load time, scaled by the pixel count),
  // x2.5 with autograd (saved tensors, gradients, temporaries). Used to refuse runs that would
  // not fit (MemoryBudget) before they start.
  double PassBytes(int64_t height, int64_t width, int64_t batch, bool with_grad) const {
    const double element = dtype_ == torch::kFloat64 ? 8.0 : 4.0;
    return elements_per_pixel_ * static_cast<double>(height) * static_cast<double>(width) *
           static_cast<double>(batch) * element * (with_grad ? 2.5 : 1.0);
  }

  // The label of a class index, or "class N" when the model has no labels.
  std::string Label(int64_t index) const;
  // A class named by index ("281") or label ("tiger cat", a unique prefix, or one of a label's
  // comma-separated names). Throws UsageError naming the range, the ambiguity or the closest label.
  int64_t ClassIndex(const std::string& spec) const;
  // Logits for a batch, without autograd. Batches of several inputs in float32 run through a
  // frozen, inference-optimized copy of the module (torch::jit::freeze + optimize_for_inference:
  // folded batch norms, constant weights), made on first use; results stay within float32
  // rounding of the plain module. float64 and single inputs use the plain module (measured on
  // ResNet-18 in a 40-image batch: the frozen copy saved nothing on one input).
  torch::Tensor Logits(const torch::Tensor& input);

 private:
  Model() = default;
  void ResolveLabels(const ModelRequest& request);

  std::string path_;
  torch::jit::Module module_;
  ModelMetadata meta_;
  torch::Device device_ = torch::kCPU;
  torch::ScalarType dtype_ = torch::kFloat32;
  std::unique_ptr<Lens> lens_;
  torch::jit::Module inference_;   // frozen + optimized copy, see Logits
  bool inference_tried_ = false;
  bool inference_ok_ = false;
  int64_t num_classes_ = 0;
  double elements_per_pixel_ = 0;  // layer-output elements per input pixel and sample
  uint64_t parameters_generation_ = 0;
};

// How much memory one run may use: --memory-limit, or by default 80% of the memory available
// (MemAvailable) on CPU; no check on CUDA unless a limit is given.
struct MemoryBudget {
  double bytes = 0;    // 0: unchecked
  std::string source;  // for messages: "80% of the 21.3 GB available", "--memory-limit 8G"
};

// "auto", "off", "0" or a size: "512M", "8G", "1.5T", "1000000" (bytes). Throws UsageError.
MemoryBudget ParseMemoryBudget(const std::string& text, const torch::Device& device);


// Applies the keys of a metadata JSON object (netlens.json, a sidecar, or overrides) to `meta`.
// `base_dir` resolves a relative "labels" file path. Throws UsageError for malformed values.
void ApplyMetadata(const Json& json, const std::string& base_dir, ModelMetadata& meta);

// Reads a labels file: one label per line (a trailing empty line is ignored).
std::vector<std::string> ReadLabels(const std::string& path);

}  // namespace netlens
