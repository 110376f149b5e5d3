// A loaded TorchScript classifier: the module on its device and dtype, its metadata (input size,
// channel order, normalization, labels) and where each piece came from, and its lens.
#pragma once

#include <torch/script.h>

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
  int64_t num_classes() const { return num_classes_; }

  // The label of a class index, or "class N" when the model has no labels.
  std::string Label(int64_t index) const;
  // Logits for a batch, without autograd.
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
  int64_t num_classes_ = 0;
};

// Applies the keys of a metadata JSON object (netlens.json, a sidecar, or overrides) to `meta`.
// `base_dir` resolves a relative "labels" file path. Throws UsageError for malformed values.
void ApplyMetadata(const Json& json, const std::string& base_dir, ModelMetadata& meta);

// Reads a labels file: one label per line (a trailing empty line is ignored).
std::vector<std::string> ReadLabels(const std::string& path);

}  // namespace netlens
