#include "netlens/model/model.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include "netlens/model/libtorch.h"

#include <filesystem>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"

namespace netlens {
namespace fs = std::filesystem;

namespace {

std::vector<double> NumberList(const Json& v, const std::string& key) {
  if (v.is_number()) return {v.get<double>()};
  if (!v.is_array()) throw UsageError("model metadata: " + key + " must be a list of numbers");
  std::vector<double> out;
  for (const auto& x : v) {
    if (!x.is_number()) throw UsageError("model metadata: " + key + " must be a list of numbers");
    out.push_back(x.get<double>());
  }
  return out;
}

// A labels file beside the model: <stem>.labels.txt, labels.txt, or a well-known name that
// matches the class count (imagenet_labels.txt for 1000 classes, cifar10_labels.txt for 10).
std::string FindLabelsBeside(const fs::path& model, int64_t classes) {
  const fs::path dir = model.parent_path();
  std::vector<fs::path> candidates{dir / (model.stem().string() + ".labels.txt"), dir / "labels.txt"};
  if (classes == 1000) candidates.push_back(dir / "imagenet_labels.txt");
  if (classes == 10) candidates.push_back(dir / "cifar10_labels.txt");
  if (classes == 100) candidates.push_back(dir / "cifar100_labels.txt");
  for (const auto& c : candidates)
    if (fs::is_regular_file(c)) return c.string();
  return "";
}

}  // namespace

torch::Device ResolveDevice(const std::string& name) {
  if (name == "auto") {
    const bool cuda = torch::cuda::is_available();
    Log().info("device auto -> {}", cuda ? "cuda" : "cpu (no CUDA device available)");
    return cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  if (name != "cpu" && name != "cuda" && !StartsWith(name, "cuda:"))
    throw UsageError("device " + Quote(name) + ": use auto, cpu, cuda or cuda:N");
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw UsageError("device " + Quote(name) + ": use auto, cpu, cuda or cuda:N");
  }
  if (device.is_cuda()) {
    const int64_t count = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
    const int64_t index = device.has_index() ? device.index() : 0;
    if (index >= count)
      throw UsageError("device " + Quote(name) + ": " +
                       (count == 0 ? std::string("this machine has no CUDA device (this LibTorch ") +
                                         "may be built without CUDA); use --device cpu"
                                   : "only " + std::to_string(count) + " CUDA device(s)"));
  }
  return device;
}

std::vector<std::string> ReadLabels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("labels file " + Quote(path) + " not found or not readable");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  return labels;
}

void ApplyMetadata(const Json& json, const std::string& base_dir, ModelMetadata& meta) {
  if (!json.is_object()) throw UsageError("model metadata must be a JSON object");
  for (const auto& [key, v] : json.items()) {
    if (key == "name" && v.is_string()) {
      meta.name = v.get<std::string>();
    } else if (key == "input_size") {
      const auto size = NumberList(v, key);
      if (size.empty() || size.size() > 2 || size[0] < 1 || size.back() < 1)
        throw UsageError("model metadata: input_size must be N or [H, W] with positive values");
      meta.height = static_cast<int64_t>(size[0]);
      meta.width = static_cast<int64_t>(size.back());
    } else if (key == "channels" && v.is_number_integer()) {
      meta.channels = v.get<int64_t>();
    } else if (key == "channel_order" && v.is_string()) {
      meta.channel_order = v.get<std::string>();
    } else if (key == "mean") {
      meta.mean = NumberList(v, key);
    } else if (key == "std") {
      meta.std = NumberList(v, key);
    } else if (key == "crop_pct" && v.is_number()) {
      meta.crop_pct = v.get<double>();
    } else if (key == "labels" && v.is_array()) {
      meta.labels = v.get<std::vector<std::string>>();
    } else if (key == "labels" && v.is_string()) {
      fs::path p(v.get<std::string>());
      if (p.is_relative() && !base_dir.empty()) p = fs::path(base_dir) / p;
      meta.labels = ReadLabels(p.string());
      meta.labels_source = p.string();
    }  // other keys (dataset, accuracy, ...) are informational
  }
  if (meta.channel_order == "gray") meta.channels = 1;
  if (meta.channels < 1)
    throw UsageError("model metadata: channels must be positive, got " + std::to_string(meta.channels));
  if (meta.mean.size() != static_cast<size_t>(meta.channels) ||
      meta.std.size() != static_cast<size_t>(meta.channels))
    throw UsageError("model metadata: mean and std need " + std::to_string(meta.channels) +
                     " values each (one per channel)");
  for (double s : meta.std)
    if (s <= 0) throw UsageError("model metadata: std values must be positive");
}

std::shared_ptr<Model> Model::Load(const ModelRequest& request) {
  const fs::path path(request.path);
  if (request.path.empty()) throw UsageError("no model given; use --model FILE.pt");
  if (!fs::exists(path))
    throw UsageError("model " + Quote(request.path) + " not found");
  if (!fs::is_regular_file(path))
    throw UsageError("model " + Quote(request.path) + " is not a file");

  std::shared_ptr<Model> model(new Model());
  model->path_ = request.path;
  model->device_ = ResolveDevice(request.device);
  model->dtype_ = request.dtype == "float64" ? torch::kFloat64 : torch::kFloat32;

  torch::jit::ExtraFilesMap extra{{"netlens.json", ""}};
  try {
    model->module_ = torch::jit::load(request.path, model->device_, extra);
  } catch (const c10::Error& e) {
    throw UsageError("model " + Quote(request.path) +
                     " is not a TorchScript archive (export it with torch.jit.trace or "
                     "torch.jit.script and torch.jit.save; tools/export_model.py does this): " +
                     TorchErrorSummary(e));
  } catch (const std::exception& e) {  // the archive's code does not compile here (torch::jit::ErrorReport)
    const std::string reason = TorchErrorSummary(e);
    const bool torchvision_ops = reason.find("torchvision::") != std::string::npos;
    throw UsageError("model " + Quote(request.path) + " cannot be loaded: its TorchScript code does not compile: " +
                     reason +
                     (torchvision_ops ? " (netlens does not provide torchvision's C++ operators, such as the nms and "
                                        "roi_align of detection models; export the part to explain without them, "
                                        "e.g. the detector's backbone)"
                                      : ""));
  }
  {
    const auto forward = model->module_.find_method("forward");
    if (!forward)
      throw UsageError("model " + Quote(request.path) + " has no forward method");
    const size_t args = forward->function().getSchema().arguments().size();  // self + inputs
    if (args != 2)
      throw UsageError("model " + Quote(request.path) + ": forward takes " + std::to_string(args - 1) +
                       " inputs; netlens explains models with one image input (wrap the model in a "
                       "module whose forward takes one tensor)");
  }
  model->module_.eval();
  // Only floating-point state takes the dtype (as Python's Module.to does): LibTorch's
  // Module::to(device, dtype) converts every tensor, and Swin's integer relative-position index
  // became a float index ("tensors used as indices must be long").
  model->module_.to(model->device_);
  const auto to_dtype = [&](torch::Tensor t) {
    if (t.is_floating_point() && t.scalar_type() != model->dtype_) t.set_data(t.to(model->dtype_));
  };
  for (const auto& t : model->module_.parameters()) to_dtype(t);
  for (const auto& t : model->module_.buffers()) to_dtype(t);
  for (auto p : model->module_.parameters()) p.set_requires_grad(false);

  ModelMetadata& meta = model->meta_;
  meta.name = path.stem().string();
  const fs::path sidecar = fs::path(request.path).replace_extension(".json");
  std::vector<std::string> sources;
  if (fs::is_regular_file(sidecar)) {
    std::ifstream in(sidecar);
    Json json;
    try {
      json = Json::parse(in);
    } catch (const Json::parse_error& e) {
      throw UsageError("sidecar metadata " + Quote(sidecar.string()) + ": " + e.what());
    }
    ApplyMetadata(json, sidecar.parent_path().string(), meta);
    sources.push_back("sidecar " + sidecar.string());
  }
  if (!extra["netlens.json"].empty()) {
    Json json;
    try {
      json = Json::parse(extra["netlens.json"]);
    } catch (const Json::parse_error& e) {
      throw UsageError("netlens.json embedded in " + Quote(request.path) + ": " + e.what());
    }
    ApplyMetadata(json, path.parent_path().string(), meta);
    if (json.contains("labels") && json["labels"].is_array()) meta.labels_source = "embedded netlens.json";
    sources.push_back("embedded netlens.json");
  }
  if (!request.overrides.empty()) {
    ApplyMetadata(request.overrides, "", meta);
    sources.push_back("options (" + Join([&] {
      std::vector<std::string> keys;
      for (const auto& item : request.overrides.items()) keys.push_back(item.key());
      return keys;
    }(), ", ") + ")");
  }
  if (sources.empty()) {
    Log().info("model {}: no netlens.json embedded and no sidecar {}: using ImageNet defaults "
               "(224x224 RGB, torchvision mean/std, crop_pct 0.875)",
               path.filename().string(), sidecar.filename().string());
  } else {
    meta.source = Join(sources, " + ");
  }
  Log().info("model metadata from {}: input {}x{}x{} {}, mean [{}], std [{}]", meta.source,
             meta.channels, meta.height, meta.width, meta.channel_order,
             JoinNumbers(meta.mean), JoinNumbers(meta.std));

  model->lens_ = std::make_unique<Lens>(model->module_);
  model->lens_->SetSmoothActivationRules(request.smooth_activations);
  const auto options = torch::TensorOptions().dtype(model->dtype_).device(model->device_);
  const torch::Tensor probe = torch::zeros({1, meta.channels, meta.height, meta.width}, options);
  torch::Tensor probe_logits;
  try {
    probe_logits = model->lens_->MeasureShapes(probe);
  } catch (const UsageError&) {
    throw;
  } catch (const std::exception& e) {  // c10::Error, or an exception raised by the model's code
    const std::string reason = TorchErrorSummary(e);
    const std::string input = "1x" + std::to_string(meta.channels) + "x" + std::to_string(meta.height) + "x" +
                              std::to_string(meta.width);
    bool plain_runs = false;
    try {
      torch::NoGradGuard no_grad;
      model->module_.forward({probe});
      plain_runs = true;
    } catch (const std::exception&) {
    }
    if (plain_runs)
      throw RuntimeError("model " + Quote(request.path) + " runs on a " + input +
                         " input, but netlens' rewritten graph of it fails: " + reason +
                         ". This is a netlens bug: please report it with the model's export script");
    throw UsageError("model " + Quote(request.path) + " fails on a " + input + " input: " + reason +
                     (LooksLikeInputShapeError(reason) ? "; set --input-size (and --channels) to what it expects" : ""));
  }
  {
    // Leaf layers' outputs approximate what a pass keeps alive (containers repeat their children).
    const auto& layers = model->lens_->layers();
    double elements = static_cast<double>(probe.numel());
    for (const auto& layer : layers) {
      if (!layer.capturable || layer.shape.empty()) continue;
      bool leaf = true;
      for (const auto& other : layers)
        leaf = leaf && !(other.capturable && StartsWith(other.path, layer.path + "."));
      if (!leaf) continue;
      double n = 1;
      for (const auto d : layer.shape) n *= static_cast<double>(d);
      elements += n;
    }
    model->elements_per_pixel_ = elements / static_cast<double>(meta.height * meta.width);
  }
  const torch::Tensor& logits = probe_logits;  // the probe pass already gave the output
  if (logits.dim() != 2)
    throw UsageError("model " + Quote(request.path) + " returns shape " +
                     c10::str(logits.sizes()) + "; netlens expects N x classes logits");
  model->num_classes_ = logits.size(1);
  model->ResolveLabels(request);
  return model;
}

void Model::ResolveLabels(const ModelRequest& request) {
  if (meta_.labels.empty()) {
    const std::string found = FindLabelsBeside(fs::path(request.path), num_classes_);
    if (!found.empty()) {
      meta_.labels = ReadLabels(found);
      meta_.labels_source = found;
      Log().info("labels: none in the model's metadata; using {} found beside the model", found);
    }
  }
  if (!meta_.labels.empty() && static_cast<int64_t>(meta_.labels.size()) != num_classes_) {
    Log().warn("labels from {} have {} entries but the model has {} classes; ignoring them",
               meta_.labels_source, meta_.labels.size(), num_classes_);
    meta_.labels.clear();
    meta_.labels_source = "none";
  }
  if (meta_.labels.empty())
    Log().info("labels: none found; classes are named by index (give --labels FILE)");
}

namespace {

bool IsInteger(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

int64_t LabelIndex(const std::string& spec, const ModelMetadata& meta) {
  const auto& labels = meta.labels;
  const std::string want = ToLower(Trim(spec));
  std::vector<int64_t> exact, prefix;
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string label = ToLower(labels[i]);
    // A label "tabby, tabby cat" also answers to each of its comma-separated names.
    bool is_exact = label == want, is_prefix = StartsWith(label, want);
    for (const auto& part : Split(label, ',')) {
      is_exact = is_exact || Trim(part) == want;
      is_prefix = is_prefix || StartsWith(Trim(part), want);
    }
    if (is_exact) exact.push_back(static_cast<int64_t>(i));
    if (is_prefix) prefix.push_back(static_cast<int64_t>(i));
  }
  if (exact.size() == 1) return exact[0];
  if (exact.empty() && prefix.size() == 1) return prefix[0];
  if (labels.empty())
    throw UsageError("target " + Quote(spec) + ": the model has no labels; give a class index "
                     "or --labels FILE");
  const auto& matches = exact.empty() ? prefix : exact;
  if (matches.size() > 1) {
    std::vector<std::string> names;
    for (auto i : matches) names.push_back(labels[i] + " (" + std::to_string(i) + ")");
    names.resize(std::min<size_t>(names.size(), 5));
    throw UsageError("target " + Quote(spec) + " is ambiguous: " + Join(names, "; "));
  }
  std::string msg = "target " + Quote(spec) + ": no class has that label";
  const std::string hint = DidYouMean(spec, labels);
  throw UsageError(hint.empty() ? msg : msg + "; " + hint);
}

}  // namespace

int64_t Model::ClassIndex(const std::string& raw) const {
  const std::string spec = Trim(raw);
  const bool negative = spec.size() > 1 && spec[0] == '-';
  if (IsInteger(negative ? spec.substr(1) : spec)) {
    const int64_t t = spec.size() > 12 ? -1 : std::stoll(spec);
    if (t < 0 || t >= num_classes_)
      throw UsageError("class " + spec + " is out of range: the model has " +
                       std::to_string(num_classes_) + " classes (0.." +
                       std::to_string(num_classes_ - 1) + ")");
    return t;
  }
  return LabelIndex(spec, meta_);
}

std::string Model::Label(int64_t index) const {
  if (index >= 0 && index < static_cast<int64_t>(meta_.labels.size())) return meta_.labels[index];
  return "class " + std::to_string(index);
}

MemoryBudget ParseMemoryBudget(const std::string& text, const torch::Device& device) {
  const std::string t = ToLower(Trim(text));
  if (t == "off" || t == "0") return {};
  if (t == "auto") {
    if (!device.is_cpu()) return {};
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    double kb = 0;
    while (meminfo >> key >> kb) {
      if (key == "MemAvailable:")
        return {0.8 * kb * 1024, "80% of the " + FormatBytes(kb * 1024) + " available; --memory-limit changes it"};
      meminfo.ignore(256, '\n');
    }
    return {};
  }
  char* end = nullptr;
  const double value = std::strtod(t.c_str(), &end);
  const std::string unit(end);
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  if (unit == "k" || unit == "kb") scale = 1e3;
  if (unit == "m" || unit == "mb") scale = 1e6;
  if (unit == "g" || unit == "gb") scale = 1e9;
  if (unit == "t" || unit == "tb") scale = 1e12;
  if (end == t.c_str() || scale == 0 || !(value > 0))
    throw UsageError("memory limit " + Quote(text) + ": use auto, off, or a size such as 512M or 8G");
  return {value * scale, "--memory-limit " + text};
}

torch::Tensor Model::Logits(const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  const bool batched = input.size(0) > 1;
  if (dtype_ == torch::kFloat32 && batched && !inference_tried_) {
    inference_tried_ = true;
    StageTimer timer;
    try {
      torch::jit::Module copy = module_.clone();
      copy.eval();
      // Freezing inlines forward's calls of submodule methods and then deletes those methods; with
      // the executor's optimizer off (the lens turns it off for its graphs) inlining stops at the
      // first level and the frozen forward fails on a submodule's missing `forward`.
      torch::jit::GraphOptimizerEnabledGuard optimize(true);
      inference_ = torch::jit::freeze(copy);
      if (device_.is_cpu()) inference_ = torch::jit::optimize_for_inference(inference_);
      inference_ok_ = true;
      timer.Stage("freeze and optimize the model for batched inference");
    } catch (const std::exception& e) {
      Log().info("batched inference uses the plain module (freezing failed: {})", TorchErrorSummary(e));
    }
  }
  if (inference_ok_ && dtype_ == torch::kFloat32 && batched) {
    try {
      return LogitsOf(inference_.forward({input}));
    } catch (const c10::Error& e) {
      inference_ok_ = false;  // a shape the frozen graph was specialised against: plain from now on
      Log().info("frozen module failed ({}); using the plain module", TorchErrorSummary(e));
    }
  }
  return LogitsOf(module_.forward({input}));
}

}  // namespace netlens
