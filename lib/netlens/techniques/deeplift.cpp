// DeepLIFT (Shrikumar, Greenside and Kundaje 2017) with the rescale rule, as Captum's DeepLift, and
// DeepLIFT-SHAP over a set of baselines, as Captum's DeepLiftShap. Input and reference run as the
// two halves of one batch through the lens under the deeplift rule: every rectifier (relu, relu_,
// relu6, hardtanh(0, x), in any form) passes grad_out * (y - y0) / (x - x0), every max_pool2d
// Captum's max-pooling rule (--max-pool sum: overlapping windows that share an arg-max add up what
// they route to it, which keeps summation-to-delta; --max-pool unpool: un-pooled by max_unpool2d
// as Captum's code does, where one window's value wins), the rest of the model (convolutions, linear layers, batch norm in
// eval, pooling by averages) its ordinary gradient, so that the input gradient of the input half
// is the multiplier m and
//   attr = (x - x0) * m,     deeplift-shap: attr = mean_i (x - b_i) * m_i.
// The manifest records summation-to-delta like integrated gradients' completeness: sum(attr)
// against f_t(x) - f_t(x0) (the mean over the baselines), exact for a network of rectifiers and
// linear maps. Where the graph allows it (DeepLiftOneBackward), the references run a forward pass of
// their own that records what the rules read of them, and the inputs alone a forward and backward
// pass: the same multipliers for 2 forwards + 1 backward instead of a forward and a backward of
// twice the batch (model/rectifier_op.h, DeepLiftTape); a single reference's pass is kept for the
// next job on the same model and reference (ReferenceCache), so that over a run of images against
// one baseline each job costs one forward and one backward pass.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <vector>

#include "netlens/core/errors.h"
#include "netlens/techniques/deeplift.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"
#include "netlens/model/rectifier_op.h"
#include "netlens/techniques/rectifier_report.h"

namespace netlens {
namespace {

BackwardRule RuleOf(const TechniqueContext& ctx) {
  return ctx.params.Str("max_pool") == "unpool" ? BackwardRule::kDeepLiftCaptum : BackwardRule::kDeepLift;
}

struct DeepLiftResult {
  torch::Tensor attributions;          // (x_i - r_i) * m_i, one per pair
  torch::Tensor input_logits, reference_logits;  // f_t of each, from the same forward passes
};

// The multipliers of `in` against `ref` (n pairs) and both logits f_t: where the model allows it
// (DeepLiftOneBackward), a forward pass of the references that records their activations
// (DeepLiftTape) and a forward and backward pass of the inputs alone; else one forward and
// backward pass of the batch [in; ref]. The same numbers either way.
struct Multipliers {
  torch::Tensor m, input_logits, reference_logits;
};

Multipliers OfPairs(TechniqueContext& ctx, const torch::Tensor& in, const torch::Tensor& ref) {
  const int64_t n = in.size(0);
  const Gradients g = TargetGradients(ctx.model, torch::cat({in, ref}), ctx.target, {}, RuleOf(ctx));
  // The rules change only the backward pass: these are the model's logits.
  const torch::Tensor t = g.output.select(1, ctx.target).to(torch::kFloat64);
  return {g.input_grad.slice(0, 0, n), t.slice(0, 0, n), t.slice(0, n)};
}

// The reference's forward pass as the input's pass replays it: its tape and its output.
struct ReferencePass {
  DeepLiftTape tape;
  torch::Tensor output;
};

// The last single reference's pass of each of a few models, so that a run of jobs against one
// reference (the zero baseline, a reference image) records it once: the jobs after the first cost
// one forward and backward pass of the input. Bounded: one reference (its rule operations' inputs,
// about one forward pass's activations) for each of the last kReferenceModels models.
class ReferenceCache {
 public:
  static constexpr size_t kReferenceModels = 4;

  // The cached pass of `ref` on this model under `rule`, else nullopt.
  std::optional<ReferencePass> Find(Model& model, BackwardRule rule, const torch::Tensor& ref) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = EntryOf(model);
    if (it == entries_.end() || it->generation != model.parameters_generation() || it->rule != rule ||
        !Same(it->reference, ref))
      return std::nullopt;
    return it->pass;  // a copy: each replay has a cursor of its own
  }
  void Store(Model& model, BackwardRule rule, const torch::Tensor& ref, const ReferencePass& pass) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = EntryOf(model);
    if (it != entries_.end()) entries_.erase(it);
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.module.expired(); }),
                   entries_.end());
    if (entries_.size() >= kReferenceModels) entries_.erase(entries_.begin());
    entries_.push_back({Handle(model), model.parameters_generation(), rule, ref, pass});
  }
  void Forget(Model& model) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = EntryOf(model);
    if (it != entries_.end()) entries_.erase(it);
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
  }

 private:
  using Module = c10::weak_intrusive_ptr<c10::ivalue::Object>;
  struct Entry {
    Module module;        // expired: the model is gone
    uint64_t generation;  // the model's parameters_generation() (sanity checks re-draw them in place)
    BackwardRule rule;
    torch::Tensor reference;
    ReferencePass pass;
  };
  static Module Handle(Model& model) { return Module(model.module()._ivalue()); }
  static bool Same(const torch::Tensor& a, const torch::Tensor& b) {
    return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() && a.device() == b.device() &&
           torch::equal(a, b);
  }
  std::vector<Entry>::iterator EntryOf(Model& model) {
    const auto object = model.module()._ivalue();
    return std::find_if(entries_.begin(), entries_.end(),
                        [&](const Entry& e) { return !e.module.expired() && e.module.lock().get() == object.get(); });
  }
  std::mutex mutex_;
  std::vector<Entry> entries_;
};

ReferenceCache& References() {
  static ReferenceCache cache;
  return cache;
}

ReferencePass RecordReference(TechniqueContext& ctx, const torch::Tensor& ref) {
  ReferencePass pass;
  torch::NoGradGuard no_grad;
  DeepLiftTapeScope record(pass.tape, /*replay=*/false);
  pass.output = ctx.model.lens().Forward(PassInput(ref), {}, RuleOf(ctx)).output;
  return pass;
}

Multipliers OfInputs(TechniqueContext& ctx, const torch::Tensor& in, const torch::Tensor& ref) {
  const bool cacheable = ref.size(0) == 1;  // a batch of references (DeepLIFT-SHAP) is rarely run twice
  std::optional<ReferencePass> cached = cacheable ? References().Find(ctx.model, RuleOf(ctx), ref) : std::nullopt;
  ReferencePass pass = cached ? std::move(*cached) : RecordReference(ctx, ref);
  if (ctx.metrics.contains("activations")) ctx.metrics["activations"]["reference"] = cached ? "reused" : "recorded";
  try {
    DeepLiftTapeScope replay(pass.tape, /*replay=*/true);
    const Gradients g = TargetGradients(ctx.model, in, ctx.target, {}, RuleOf(ctx));
    TORCH_CHECK(pass.tape.Exhausted(), "deeplift: the input's forward pass ran fewer rule operations than the reference's");
    if (cacheable && !cached) References().Store(ctx.model, RuleOf(ctx), ref, pass);
    return {g.input_grad, g.output.select(1, ctx.target).to(torch::kFloat64),
            pass.output.select(1, ctx.target).to(torch::kFloat64)};
  } catch (const c10::Error&) {
    if (cached) References().Forget(ctx.model);
    throw;
  }
}

// The tape's message in an error that TorchScript's interpreter may have wrapped, else its first line.
std::string TapeMessage(const std::string& what) {
  const size_t at = what.find("deeplift: ");
  const std::string from = what.substr(at == std::string::npos ? 0 : at);
  return from.substr(0, from.find('\n'));
}

// DeepLIFT of input/reference pairs (n x C x H x W each), `batch` pairs per pass.
DeepLiftResult DeepLiftPairs(TechniqueContext& ctx, const torch::Tensor& inputs, const torch::Tensor& references,
                             int64_t batch) {
  bool one_backward = DeepLiftOneBackward(ctx.model);
  std::vector<torch::Tensor> attr, in_logits, ref_logits;
  for (int64_t start = 0; start < inputs.size(0); start += batch) {
    const int64_t end = std::min(inputs.size(0), start + batch);
    const torch::Tensor in = inputs.slice(0, start, end), ref = references.slice(0, start, end);
    Multipliers m;
    if (one_backward) {
      try {
        m = OfInputs(ctx, in, ref);
      } catch (const c10::Error& e) {
        // A forward pass that depends on its input's values (a scripted branch) or changes a
        // recorded activation in place: the pairs' pass does not need the two to agree.
        Warn(ctx, "deeplift: the backward pass over the inputs alone failed (" + TapeMessage(e.what()) +
                      "); running input/reference pairs instead");
        one_backward = false;
        if (ctx.metrics.contains("activations")) ctx.metrics["activations"]["backward"] = "pairs";
      }
    }
    if (!one_backward) m = OfPairs(ctx, in, ref);
    attr.push_back((in - ref) * m.m);
    in_logits.push_back(m.input_logits);
    ref_logits.push_back(m.reference_logits);
  }
  return {torch::cat(attr), torch::cat(in_logits), torch::cat(ref_logits)};
}

// sum(attr) against f_t(x) - mean_i f_t(r_i), from the attribution's own forward passes.
void RecordSummation(TechniqueContext& ctx, const DeepLiftResult& r) {
  const double expected = (r.input_logits.mean() - r.reference_logits.mean()).item<double>();
  ctx.metrics["summation_to_delta"] = CompletenessMetrics(r.attributions.sum().item<double>() / r.attributions.size(0), expected);
}

OptionTable DeepLiftOptions(bool several) {
  OptionTable options;
  if (several)
    options.push_back({"baselines", OptionType::kStringList,
                       "references, each zero, black, blur, uniform or an image file", Json::array({"zero", "blur", "uniform"}),
                       {}, {}, {}, false, "", true});
  else
    options.push_back({"baseline", OptionType::kString, "the reference: zero, black, blur, uniform, or an image file",
                       "zero", {}, {}, {}, false, "", true});
  options.push_back({"max_pool", OptionType::kString,
                     "max-pooling rule: sum (what overlapping windows route to a shared arg-max adds up; keeps "
                     "summation-to-delta) or unpool (max_unpool2d, as Captum's code: one window's value wins)",
                     "sum", {"sum", "unpool"}});
  options.push_back({"blur_sigma", OptionType::kFloat, "Gaussian sigma in pixels of the blur baseline", 10.0, {}, 0.1, 1000.0});
  options.push_back({"batch_size", OptionType::kInt, "input/reference pairs per forward/backward pass", 8, {}, 1.0, 2048.0});
  options.push_back({"seed", OptionType::kInt, "seed of the uniform baseline", 0, {}, 0.0, 4294967295.0});
  return options;
}

}  // namespace

TechniqueInfo DeepLiftTechnique() {
  return {"deeplift", "DeepLIFT (rescale rule): differences from a reference, propagated by multipliers",
          DeepLiftOptions(false),
          [](TechniqueContext& ctx) {
            const torch::Tensor& x = ctx.input.tensor;
            ctx.metrics["activations"] = RectifierReport(ctx.model, RuleOf(ctx));
            const torch::Tensor b = BaselineOf(ctx, ctx.params.Str("baseline"));
            const DeepLiftResult r = DeepLiftPairs(ctx, x, b, 1);
            RecordSummation(ctx, r);
            return std::vector<Artifact>{{"deeplift", r.attributions}};
          }, BatchPass::kForwardBackward};
}

TechniqueInfo DeepLiftShapTechnique() {
  return {"deeplift-shap", "DeepLIFT-SHAP: DeepLIFT averaged over a set of references", DeepLiftOptions(true),
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const torch::Tensor& x = ctx.input.tensor;
            const std::vector<std::string> kinds = p.Strs("baselines");
            if (kinds.empty()) throw UsageError("deeplift-shap: --baselines is empty; give at least one (e.g. zero)");
            ctx.metrics["activations"] = RectifierReport(ctx.model, RuleOf(ctx));
            std::vector<torch::Tensor> set;
            for (const auto& kind : kinds) set.push_back(BaselineOf(ctx, kind));
            const torch::Tensor baselines = torch::cat(set);
            const int64_t batch = p.Int("batch_size");
            const DeepLiftResult r = DeepLiftPairs(ctx, x.expand_as(baselines).contiguous(), baselines, batch);
            RecordSummation(ctx, r);
            return std::vector<Artifact>{{"deeplift_shap", r.attributions.mean(0, true)}};
          }, BatchPass::kForwardBackward};
}

void ForgetDeepLiftReferences() { References().Clear(); }

}  // namespace netlens
