#include "netlens/runner/write_artifacts.h"

#include <opencv2/imgproc.hpp>

#include <filesystem>

#include "netlens/core/log.h"
#include "netlens/image/gif.h"
#include "netlens/image/npy.h"
#include "netlens/image/render.h"
#include "netlens/output/files.h"

namespace netlens {
namespace fs = std::filesystem;

namespace {

class Writer {
 public:
  Writer(std::string folder, std::string root) : folder_(std::move(folder)), root_(std::move(root)) {}

  void Raw(const std::string& stem, const Artifact& a) {
    const std::string path = (fs::path(folder_) / (stem + ".npy")).string();
    WriteFileAtomic(path, NpyBytes(a.tensor));
    Add(path, "raw", a, a.tensor.sizes().vec(), "");
  }

  void Image(const std::string& stem, const std::string& view, const Artifact& a, const cv::Mat& img,
             const std::string& caption = "") {
    const std::string path = (fs::path(folder_) / (stem + (view.empty() ? "" : "_" + view) + ".png")).string();
    const cv::Mat shown = Enlarged(img);
    WriteImageAtomic(path, shown);
    Add(path, "image", a, {shown.rows, shown.cols, shown.channels()}, view.empty() ? "color" : view);
    if (!caption.empty()) outputs.back()["caption"] = caption;
  }

  void Gif(const std::string& stem, const Artifact& a, const std::vector<cv::Mat>& frames) {
    const std::string path = (fs::path(folder_) / (stem + ".gif")).string();
    WriteFileAtomic(path, GifBytes(frames, a.frame_delay_cs, std::max(a.frame_delay_cs, 150)));
    Add(path, "animation", a, {static_cast<int64_t>(frames.size()), frames[0].rows, frames[0].cols, 3}, "");
  }

  // A finished figure (H x W x 3 uint8 BGR): the PNG only.
  void Figure(const std::string& stem, const Artifact& a) {
    const torch::Tensor t = a.tensor.detach().to(torch::kCPU, torch::kUInt8).contiguous();
    const cv::Mat img(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_8UC3, t.data_ptr());
    const std::string path = (fs::path(folder_) / (stem + ".png")).string();
    WriteImageAtomic(path, img);
    Add(path, "image", a, {img.rows, img.cols, 3}, "figure");
  }

  Json outputs = Json::array();

  // Pictures of small inputs (28 x 28 Fashion-MNIST, 32 x 32 CIFAR) are enlarged by a whole
  // factor, nearest neighbour, to at least kMinPictureSize pixels; raw arrays keep their size.
  static cv::Mat Enlarged(const cv::Mat& img) {
    constexpr int kMinPictureSize = 224;
    const int side = std::min(img.rows, img.cols);
    if (side >= kMinPictureSize / 2 || side == 0) return img;
    const int factor = (kMinPictureSize + side - 1) / side;
    cv::Mat out;
    cv::resize(img, out, cv::Size(), factor, factor, cv::INTER_NEAREST);
    return out;
  }

 private:
  void Add(const std::string& path, const std::string& kind, const Artifact& a,
           const std::vector<int64_t>& shape, const std::string& view) {
    Json entry{{"path", fs::relative(path, root_).string()}, {"kind", kind}, {"shape", shape},
               {"artifact", a.name}};
    if (!a.layer.empty()) entry["layer"] = a.layer;
    if (!view.empty()) entry["view"] = view;
    outputs.push_back(entry);
    Log().debug("wrote {}", path);
  }

  std::string folder_, root_;
};

void WriteInputAttribution(Writer& w, const std::string& stem, const Artifact& a,
                           const InputImage& input, double outlier_percent) {
  const torch::Tensor g = a.tensor.detach()[0].to(torch::kCPU, torch::kFloat64);
  w.Image(stem, "", a, ColorImage(MinMax(g)));
  const torch::Tensor magnitude = NormalizeAbs(g.abs().sum(0), outlier_percent);
  w.Image(stem, "gray", a, GrayImage(magnitude));
  w.Image(stem, "heatmap", a, Overlay(input.display, HeatImage(magnitude)));
  w.Image(stem, "signed", a, DivergingImage(NormalizeSigned(g.sum(0), outlier_percent)));
  if (a.pos_neg) {
    const torch::Tensor pos = g.clamp_min(0), neg = (-g).clamp_min(0);
    const double pmax = pos.max().item<double>(), nmax = neg.max().item<double>();
    w.Image(stem, "pos", a, ColorImage(pmax > 0 ? pos / pmax : pos));
    w.Image(stem, "neg", a, ColorImage(nmax > 0 ? neg / nmax : neg));
  }
}

void WriteLayerMap(Writer& w, const std::string& stem, const Artifact& a, const InputImage& input) {
  const torch::Tensor up = CamToDisplay(a.tensor[0][0], input.display, a.nearest);
  w.Image(stem, "heatmap", a, Overlay(input.display, HeatImage(up)));
  w.Image(stem, "gray", a, GrayImage(up));
}

// N x C x H x W pictures in [0, 1]: one PNG per sample (with its caption), a grid when N > 1.
void WritePictures(Writer& w, const std::string& stem, const Artifact& a) {
  const torch::Tensor pictures = a.tensor.detach().to(torch::kCPU, torch::kFloat64);
  const int64_t n = pictures.size(0);
  std::vector<cv::Mat> tiles;
  for (int64_t i = 0; i < n; ++i) {
    const std::string caption = static_cast<size_t>(i) < a.captions.size() ? a.captions[static_cast<size_t>(i)] : "";
    tiles.push_back(ColorImage(pictures[i]));
    w.Image(n == 1 ? stem : stem + "_" + std::to_string(i), "", a, tiles.back(), caption);
  }
  if (n > 1) {
    for (auto& tile : tiles) tile = Writer::Enlarged(tile);
    w.Image(stem, "grid", a, GridImage(tiles, a.captions));
  }
}

// T x N x C x H x W frames in [0, 1]: an animated GIF, each frame a grid when N > 1.
void WriteAnimation(Writer& w, const std::string& stem, const Artifact& a) {
  // Frame by frame: a float64 copy of all frames at once would double the animation's memory.
  const torch::Tensor frames = a.tensor.detach();
  std::vector<cv::Mat> pictures;
  for (int64_t t = 0; t < frames.size(0); ++t) {
    std::vector<cv::Mat> tiles;
    for (int64_t i = 0; i < frames.size(1); ++i)
      tiles.push_back(Writer::Enlarged(ColorImage(frames[t][i].to(torch::kCPU, torch::kFloat64))));
    pictures.push_back(tiles.size() == 1 ? tiles[0] : GridImage(tiles, {}));
  }
  w.Gif(stem, a, pictures);
}

}  // namespace

Json WriteArtifacts(const std::vector<Artifact>& artifacts, const InputImage& input,
                    const std::string& folder, const std::string& base, const std::string& root,
                    double outlier_percent) {
  Writer writer(folder, root);
  for (const auto& a : artifacts) {
    const std::string stem = base + "_" + a.name + (a.layer.empty() ? "" : "_" + a.layer);
    if (a.kind == Artifact::Kind::kAnimation) {
      WriteAnimation(writer, stem, a);
      continue;
    }
    if (a.kind == Artifact::Kind::kFigure) {
      writer.Figure(stem, a);
      continue;
    }
    writer.Raw(stem, a);
    const bool map = a.kind == Artifact::Kind::kInputAttribution || a.kind == Artifact::Kind::kLayerMap;
    if (map && a.tensor.numel() > 0 && !a.tensor.detach().any().item<bool>())
      Log().warn("{}{} is zero everywhere for this image and target, so its pictures are blank (the technique's "
                 "backward rule stops every gradient on this model: e.g. DeconvNet on SqueezeNet)",
                 a.name, a.layer.empty() ? "" : " at " + a.layer);
    if (a.kind == Artifact::Kind::kPicture) {
      WritePictures(writer, stem, a);
    } else if (a.kind == Artifact::Kind::kInputAttribution) {
      WriteInputAttribution(writer, stem, a, input, outlier_percent);
    } else if (a.kind == Artifact::Kind::kLayerMap) {
      WriteLayerMap(writer, stem, a, input);
    }
  }
  return writer.outputs;
}

}  // namespace netlens
