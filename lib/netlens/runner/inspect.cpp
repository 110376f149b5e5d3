#include "netlens/runner/inspect.h"

#include <sstream>

#include "netlens/core/strings.h"
#include "netlens/model/layout.h"

namespace netlens {
namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::vector<std::string> parts;
  for (auto d : shape) parts.push_back(std::to_string(d));
  return parts.empty() ? "-" : Join(parts, "x");
}

}  // namespace

Json InspectJson(Model& model) {
  Json layers = Json::array();
  int64_t conv_index = 0;
  for (const auto& l : model.lens().layers()) {
    Json entry{{"path", l.path}, {"type", l.type}, {"capturable", l.capturable}, {"shape", l.shape}};
    if (l.capturable && StartsWith(l.type, "Conv") && l.type.find("Transpose") == std::string::npos)
      entry["alias"] = "conv-" + std::to_string(conv_index++);
    if (!l.capturable) entry["why_not"] = l.why_not;
    if (l.capturable && (l.shape.size() == 3 || l.shape.size() == 4)) {
      const SpatialLayout layout = InferSpatialLayout(l.shape, model.meta().height, model.meta().width);
      entry["layout"] = layout.Describe();
      if (layout.ambiguous) entry["layout_ambiguous"] = true;
    }
    layers.push_back(entry);
  }
  const auto& m = model.meta();
  return {{"model", model.path()},
          {"metadata_source", m.source},
          {"input", {m.channels, m.height, m.width}},
          {"channel_order", m.channel_order},
          {"mean", m.mean},
          {"std", m.std},
          {"classes", model.num_classes()},
          {"labels_source", m.labels_source},
          {"rectifiers", model.lens().RectifierCount()},
          {"device", model.device().str()},
          {"layers", layers}};
}

std::string InspectTable(Model& model, bool all) {
  const Json info = InspectJson(model);
  std::ostringstream out;
  size_t width = 5, type_width = 4, capturable = 0;
  for (const auto& l : info["layers"]) {
    width = std::max(width, l["path"].get<std::string>().size());
    type_width = std::max(type_width, l["type"].get<std::string>().size());
    capturable += l["capturable"].get<bool>() ? 1 : 0;
  }
  out << "model   " << model.path() << "\n"
      << "input   " << ShapeText({1, model.meta().channels, model.meta().height, model.meta().width})
      << " " << model.meta().channel_order << " (metadata: " << model.meta().source << ")\n"
      << "classes " << model.num_classes() << " (labels: " << model.meta().labels_source << ")\n"
      << "layers  " << capturable << " capturable, in forward order; " << model.lens().RectifierCount()
      << " ReLU-type ops\n\n";
  auto pad = [](const std::string& s, size_t n) { return s + std::string(n > s.size() ? n - s.size() : 0, ' '); };
  out << pad("#", 5) << pad("layer", width + 2) << pad("type", type_width + 2) << pad("alias", 9)
      << "output\n";
  int index = 0;
  for (const auto& l : info["layers"]) {
    if (!l["capturable"].get<bool>()) continue;
    out << pad(std::to_string(index++), 5) << pad(l["path"], width + 2) << pad(l["type"], type_width + 2)
        << pad(l.value("alias", ""), 9) << ShapeText(l["shape"].get<std::vector<int64_t>>());
    // Positions not kept as N x C x h x w: how layer techniques read them (model/layout.h).
    const std::string layout = l.value("layout", "");
    if (!layout.empty() && layout != "nchw") out << "  " << layout;
    out << "\n";
  }
  if (all) {
    out << "\nnot capturable:\n";
    for (const auto& l : info["layers"])
      if (!l["capturable"].get<bool>())
        out << "     " << pad(l["path"], width + 2) << pad(l["type"], type_width + 2)
            << l["why_not"].get<std::string>() << "\n";
  }
  return out.str();
}

}  // namespace netlens
