#include "netlens/model/layout.h"
#include "netlens/optvis/objective.h"

#include <cctype>
#include <cstdlib>
#include <sstream>
#include <torch/nn/functional/distance.h>
#include <torch/nn/functional/pooling.h>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"
#include "netlens/image/npy.h"
#include "netlens/optvis/picture.h"

namespace netlens::optvis {
namespace F = torch::nn::functional;

namespace {

std::string FormatWeight(double w) {
  std::ostringstream out;
  out << w;
  return out.str();
}

// A parsed sub-expression: a number, or a linear combination of terms.
struct Value {
  bool is_number = false;
  double number = 0;
  std::vector<Term> terms;

  void Scale(double k) {
    if (is_number) number *= k;
    for (auto& t : terms) t.weight *= k;
  }
};

class Parser {
 public:
  Parser(const std::string& text, Model& model, Objective& objective)
      : text_(text), model_(model), objective_(objective) {}

  Value Parse() {
    Value v = Sum();
    Skip();
    if (pos_ < text_.size()) Fail("unexpected " + Quote(text_.substr(pos_, 1)));
    if (v.is_number || v.terms.empty()) Fail("the expression has no term to optimize", 0);
    return v;
  }

  [[noreturn]] void Fail(const std::string& message, size_t at = std::string::npos) const {
    const size_t column = (at == std::string::npos ? pos_ : at) + 1;
    throw UsageError("objective " + Quote(text_) + ", column " + std::to_string(column) + ": " +
                     message + " (netlens featurevis --help shows the syntax)");
  }

 private:
  void Skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Eat(char c) {
    Skip();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  Value Sum() {
    Value v = Product();
    while (true) {
      const size_t at = pos_;
      double sign;
      if (Eat('+')) sign = 1;
      else if (Eat('-')) sign = -1;
      else break;
      Value rhs = Product();
      rhs.Scale(sign);
      if (v.is_number != rhs.is_number)
        Fail("a number can only multiply a term, not be added to one", at);
      if (v.is_number) v.number += rhs.number;
      else v.terms.insert(v.terms.end(), rhs.terms.begin(), rhs.terms.end());
    }
    return v;
  }

  Value Product() {
    Value v = Unary();
    while (true) {
      const size_t at = pos_;
      if (!Eat('*')) break;
      Value rhs = Unary();
      if (!v.is_number && !rhs.is_number) Fail("two terms cannot be multiplied; only by a number", at);
      if (v.is_number) std::swap(v, rhs);
      v.Scale(rhs.number);
    }
    return v;
  }

  Value Unary() {
    if (Eat('-')) {
      Value v = Unary();
      v.Scale(-1);
      return v;
    }
    if (Eat('(')) {
      Value v = Sum();
      if (!Eat(')')) Fail("missing )");
      return v;
    }
    Skip();
    if (pos_ >= text_.size()) Fail("expected a term or a number at the end");
    const char c = text_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      const char* begin = text_.c_str() + pos_;
      char* end = nullptr;
      const double number = std::strtod(begin, &end);
      if (end == begin) Fail("expected a number");
      pos_ += static_cast<size_t>(end - begin);
      Value v;
      v.is_number = true;
      v.number = number;
      return v;
    }
    Value v;
    v.terms.push_back(Atom());
    return v;
  }

  std::string Name() {
    Skip();
    const size_t start = pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      const std::string so_far = text_.substr(start, pos_ - start);
      // Aliases conv-N, last-conv and conv-last hold a '-' that is not a minus.
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
          (c == '-' && (so_far == "conv" || so_far == "last"))) {
        ++pos_;
      } else {
        break;
      }
    }
    return text_.substr(start, pos_ - start);
  }

  int64_t Integer(const std::string& what) {
    Skip();
    const size_t start = pos_;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (pos_ == start || pos_ - start > 9) Fail("expected " + what + " (a whole number)", start);
    return std::stoll(text_.substr(start, pos_ - start));
  }

  std::string ResolveLayer(const std::string& name, size_t at) {
    if (name.empty()) Fail("expected a layer name, class:NAME, direction(...) or a number", at);
    try {
      return model_.lens().Resolve(name);
    } catch (const UsageError& e) {
      Fail(e.what(), at);
    }
  }

  int64_t ChannelCount(const std::string& layer) const {  // through the layer's layout (tokens: the last size)
    const auto& shape = model_.lens().Info(layer).shape;
    if (shape.size() >= 3) {
      const SpatialLayout layout = InferSpatialLayout(shape, model_.meta().height, model_.meta().width);
      if (layout.spatial()) return layout.channels;
    }
    return shape.size() >= 2 ? shape[1] : 0;
  }

  Term Atom() {
    Skip();
    const size_t start = pos_;
    if (text_.compare(pos_, 6, "class:") == 0) return ClassTerm(start);
    const std::string name = Name();
    Term term;
    if (name == "direction" && Eat('(')) return DirectionTerm(start);
    Skip();
    const bool has_channel = pos_ < text_.size() && text_[pos_] == ':';
    if (!has_channel && (name == "l1" || name == "l2" || name == "tv" || name == "blur")) {
      term.kind = name == "l1" ? Term::Kind::kL1 : name == "l2" ? Term::Kind::kL2
                  : name == "tv" ? Term::Kind::kTV : Term::Kind::kBlur;
      term.text = name;
      return term;
    }
    term.layer = ResolveLayer(name, start);
    UseLayer(objective_, term.layer);
    if (!Eat(':')) {
      term.kind = Term::Kind::kLayer;
      term.text = name;
      return term;
    }
    const size_t channel_at = pos_;
    const int64_t first = Integer("a channel");
    int64_t last = first;
    if (text_.compare(pos_, 2, "..") == 0) {
      pos_ += 2;
      last = Integer("the last channel of the range");
      if (last < first) Fail("an empty channel range", channel_at);
    }
    const int64_t count = ChannelCount(term.layer);
    if (count > 0 && last >= count)
      Fail("channel " + std::to_string(last) + " is out of range: " + term.layer + " has " +
           std::to_string(count) + " channels (0.." + std::to_string(count - 1) + ")", channel_at);
    for (int64_t c = first; c <= last; ++c) term.channels.push_back(c);
    term.kind = Term::Kind::kChannel;
    if (Eat('@')) {
      term.kind = Term::Kind::kNeuron;
      term.y = Integer("a row");
      if (!Eat(',')) Fail("a neuron position is @ROW,COLUMN");
      term.x = Integer("a column");
      const auto& shape = model_.lens().Info(term.layer).shape;
      if (shape.size() == 4 && (term.y >= shape[2] || term.x >= shape[3]))
        Fail("position " + std::to_string(term.y) + "," + std::to_string(term.x) +
             " is outside " + term.layer + "'s " + std::to_string(shape[2]) + "x" +
             std::to_string(shape[3]) + " positions at the model's input size", channel_at);
    }
    term.text = text_.substr(start, pos_ - start);
    return term;
  }

  Term ClassTerm(size_t start) {
    pos_ += 6;
    // The label runs to the end, to ')' or to an operator with a space before it.
    size_t end = pos_;
    while (end < text_.size() && text_[end] != ')' &&
           !(end > pos_ && text_[end - 1] == ' ' &&
             (text_[end] == '+' || text_[end] == '-' || text_[end] == '*')))
      ++end;
    const std::string label = Trim(text_.substr(pos_, end - pos_));
    if (label.empty()) Fail("class: needs an index or a label, e.g. class:281 or class:tiger cat");
    Term term;
    term.kind = Term::Kind::kClass;
    const size_t dots = label.find("..");
    try {
      if (dots != std::string::npos && dots > 0 &&
          label.find_first_not_of("0123456789.") == std::string::npos) {
        const int64_t first = model_.ClassIndex(label.substr(0, dots));
        const int64_t last = model_.ClassIndex(label.substr(dots + 2));
        if (last < first) Fail("an empty class range", pos_);
        for (int64_t c = first; c <= last; ++c) term.channels.push_back(c);
      } else {
        term.channels = {model_.ClassIndex(label)};
      }
    } catch (const UsageError& e) {
      Fail(e.what(), pos_);
    }
    for (const int64_t c : term.channels) {
      const std::string name = model_.Label(c);
      term.names.push_back("class " + std::to_string(c) +
                           (name == "class " + std::to_string(c) ? "" : " " + name));
    }
    pos_ = end;
    objective_.needs_logits = true;
    term.text = term.channels.size() == 1 ? term.names[0] : "class:" + label;
    return term;
  }

  Term DirectionTerm(size_t start) {
    Term term;
    term.kind = Term::Kind::kDirection;
    const size_t layer_at = pos_;
    term.layer = ResolveLayer(Name(), layer_at);
    UseLayer(objective_, term.layer);
    if (!Eat(',')) Fail("direction(LAYER, VECTOR): missing , after the layer");
    std::vector<double> values;
    Skip();
    const size_t vector_at = pos_;
    if (Eat('[')) {
      while (!Eat(']')) {
        Skip();
        const char* begin = text_.c_str() + pos_;
        char* end = nullptr;
        values.push_back(std::strtod(begin, &end));
        if (end == begin) Fail("expected a number in the direction's list");
        pos_ += static_cast<size_t>(end - begin);
        if (!Eat(',') && !(Skip(), pos_ < text_.size() && text_[pos_] == ']'))
          Fail("expected , or ] in the direction's list");
      }
      term.reference = torch::tensor(values, torch::kFloat64);
    } else {
      const size_t close = text_.find(')', pos_);
      if (close == std::string::npos) Fail("direction(LAYER, FILE.npy): missing )");
      const std::string path = Trim(text_.substr(pos_, close - pos_));
      // Bounded before it is read: one float64 per channel of the layer (plus the header).
      const int64_t channels = ChannelCount(term.layer);
      const int64_t most = channels > 0 ? channels : int64_t{1} << 20;
      try {
        term.reference = ReadNpyFile(path, "direction file " + Quote(path), 8.0 * static_cast<double>(most) + 4096,
                                     "a direction over " + std::to_string(most) + " channels")
                             .to(torch::kFloat64)
                             .flatten();
      } catch (const UsageError& e) {
        Fail(e.what(), vector_at);
      }
      pos_ = close;
    }
    if (!Eat(')')) Fail("direction(LAYER, VECTOR): missing )");
    const int64_t count = ChannelCount(term.layer);
    if (count > 0 && term.reference.numel() != count)
      Fail("the direction has " + std::to_string(term.reference.numel()) + " values; " +
           term.layer + " has " + std::to_string(count) + " channels", vector_at);
    if (term.reference.abs().max().item<double>() == 0) Fail("the direction is all zeros", vector_at);
    term.text = text_.substr(start, pos_ - start);
    return term;
  }

  const std::string& text_;
  Model& model_;
  Objective& objective_;
  size_t pos_ = 0;
};

// Per-sample index of a term's channel (or class): N entries.
torch::Tensor SampleIndex(const Term& t, int64_t n, const torch::Device& device) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; ++b)
    idx[static_cast<size_t>(b)] = t.channels.size() == 1 ? t.channels[0] : t.channels[static_cast<size_t>(b)];
  return torch::tensor(idx, torch::kLong).to(device);
}

torch::Tensor PerSampleMean(const torch::Tensor& t) {
  return t.dim() == 1 ? t : t.flatten(1).mean(1);
}

torch::Tensor TermValue(const Term& t, const torch::Tensor& act, const torch::Tensor& logits,
                        const torch::Tensor& picture) {
  const int64_t n = picture.size(0);
  const auto rows = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(picture.device()));
  switch (t.kind) {
    case Term::Kind::kChannel:
      return PerSampleMean(act.index({rows, SampleIndex(t, n, act.device())}));
    case Term::Kind::kNeuron: {
      if (act.dim() != 4)
        throw UsageError("neuron " + t.text + ": " + t.layer + " has no spatial positions; use LAYER:C");
      const int64_t y = t.y >= 0 ? t.y : act.size(2) / 2, x = t.x >= 0 ? t.x : act.size(3) / 2;
      if (y >= act.size(2) || x >= act.size(3))
        throw UsageError("neuron " + t.text + ": " + t.layer + " has " + std::to_string(act.size(2)) +
                         "x" + std::to_string(act.size(3)) + " positions at this picture size");
      return act.index({rows, SampleIndex(t, n, act.device()), y, x});
    }
    case Term::Kind::kLayer:
      return act.pow(2).flatten(1).mean(1);
    case Term::Kind::kClass:
      return logits.index({rows, SampleIndex(t, n, logits.device())});
    case Term::Kind::kDirection: {
      torch::Tensor d = t.reference.to(act.device(), act.scalar_type());
      d = act.dim() == 4 ? d.view({1, -1, 1, 1}) : d.view({1, -1});
      return PerSampleMean(F::cosine_similarity(act, d, F::CosineSimilarityFuncOptions().dim(1)));
    }
    case Term::Kind::kMatch: {
      const torch::Tensor ref = t.reference.to(act.device(), act.scalar_type());
      return -(act - ref).pow(2).flatten(1).sum(1) / ref.pow(2).sum().clamp_min(1e-12);
    }
    case Term::Kind::kL1:
      return (picture - 0.5).abs().flatten(1).mean(1);
    case Term::Kind::kL2:
      return (picture - 0.5).pow(2).flatten(1).mean(1);
    case Term::Kind::kTV:
      return TotalVariation(picture);
    case Term::Kind::kBlur: {
      const torch::Tensor blurred = F::avg_pool2d(picture.detach(), F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
      return 0.5 * (picture - blurred).pow(2).flatten(1).mean(1);
    }
  }
  throw InternalError("objective: unknown term kind");
}

}  // namespace

size_t UseLayer(Objective& objective, const std::string& layer) {
  for (size_t i = 0; i < objective.layers.size(); ++i)
    if (objective.layers[i] == layer) return i;
  objective.layers.push_back(layer);
  return objective.layers.size() - 1;
}

Objective ParseObjective(const std::string& text, Model& model) {
  Objective objective;
  objective.text = text;
  Parser parser(text, model, objective);
  Value value = parser.Parse();
  objective.terms = std::move(value.terms);
  for (const auto& t : objective.terms) {
    if (t.channels.size() <= 1) continue;
    const auto n = static_cast<int64_t>(t.channels.size());
    if (objective.batch > 1 && objective.batch != n)
      parser.Fail("channel ranges of different lengths (" + std::to_string(objective.batch) + " and " +
                  std::to_string(n) + ") cannot be paired", 0);
    objective.batch = n;
  }
  if (!objective.layers.empty()) objective.diversity_layer = objective.layers[0];
  return objective;
}

torch::Tensor Objective::Evaluate(const std::vector<torch::Tensor>& activations,
                                  const torch::Tensor& logits, const torch::Tensor& picture) const {
  torch::Tensor total = torch::zeros({picture.size(0)}, picture.options());
  for (const auto& t : terms) {
    torch::Tensor act;
    if (!t.layer.empty()) {
      for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i] == t.layer) act = ChannelsFirst(activations[i], picture.size(2), picture.size(3));
    }
    total = total + t.weight * TermValue(t, act, logits, picture).to(picture.scalar_type());
  }
  return total;
}

std::string Objective::Caption(int64_t b) const {
  std::string out;
  for (const auto& t : terms) {
    std::string text = t.text;
    if (t.kind == Term::Kind::kClass) {
      text = t.names[t.names.size() == 1 ? 0 : static_cast<size_t>(b)];
    } else if (t.channels.size() > 1) {
      text = t.layer + ":" + std::to_string(t.channels[static_cast<size_t>(b)]);
      if (t.kind == Term::Kind::kNeuron && t.y >= 0) text += "@" + std::to_string(t.y) + "," + std::to_string(t.x);
    }
    const double w = std::abs(t.weight);
    const std::string sign = t.weight < 0 ? (out.empty() ? "-" : " - ") : (out.empty() ? "" : " + ");
    out += sign + (w == 1 ? "" : FormatWeight(w) + "*") + text;
  }
  return out;
}

torch::Tensor ChannelsFirst(const torch::Tensor& activation, int64_t height, int64_t width) {
  if (activation.dim() < 3 || height <= 0 || width <= 0) return activation;
  const SpatialLayout layout = InferSpatialLayout(activation.sizes().vec(), height, width);
  return layout.spatial() ? ToSpatial(activation, layout) : activation;
}

torch::Tensor Diversity(const torch::Tensor& given, int64_t height, int64_t width) {
  const torch::Tensor activation = ChannelsFirst(given, height, width);
  const int64_t n = activation.size(0);
  if (n < 2) return torch::zeros({}, activation.options());
  const torch::Tensor flat = activation.reshape({n, activation.size(1), -1});
  torch::Tensor grams = torch::matmul(flat, flat.transpose(1, 2)).reshape({n, -1});
  grams = grams / grams.norm(2, {1}, true).clamp_min(1e-12);
  const torch::Tensor sims = torch::matmul(grams, grams.t());  // n x n cosine similarities
  return -(sims.sum() - sims.diagonal().sum()) / static_cast<double>(n);
}

}  // namespace netlens::optvis
