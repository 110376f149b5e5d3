// Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019) through the lens: one
// forward and one backward pass in which every convolution and linear layer carries its rule
// (epsilon, gamma, alpha-beta, zplus, flat, wsquare, zbox: model/lrp.h), sums and poolings the
// epsilon rule of a layer without parameters, and activations pass relevance through. Rules per
// layer come from a composite (Zennit's presets, or "epsilon" everywhere, Captum's LRP default),
// with overrides by layer type or module path. As Captum, the output relevance is the target
// logit f_t(x), so the map sums to f_t(x) minus what biases and epsilon absorb; the manifest
// records that sum against f_t(x) (conservation) and which rule each layer got.
#include <cmath>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/model/lrp.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"

namespace netlens {
namespace {

bool UsesRule(const LrpRules& r, LrpRule rule) {
  if (r.conv == rule || r.dense == rule || (r.has_first && r.first == rule)) return true;
  for (const auto& item : r.layers)
    if (item.second == rule) return true;
  return false;
}

LrpRules RulesOf(TechniqueContext& ctx) {
  const auto& p = ctx.params;
  LrpRules rules = CompositeRules(p.Str("composite"));
  for (const std::string& entry : p.Strs("layer_rules")) {
    const size_t eq = entry.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size())
      throw UsageError("--layer-rules: " + Quote(entry) +
                       " is not KEY=RULE (KEY: conv, linear, first or a module path; e.g. features.0=flat)");
    const std::string key = Trim(entry.substr(0, eq));
    const LrpRule rule = ParseLrpRule(Trim(entry.substr(eq + 1)));
    if (key == "conv") {
      rules.conv = rule;
    } else if (key == "linear") {
      rules.dense = rule;
    } else if (key == "first") {
      rules.has_first = true;
      rules.first = rule;
    } else {
      const bool alias = StartsWith(key, "conv-") || key == "last-conv" || key == "conv-last";
      rules.layers[alias ? ctx.model.lens().Resolve(key) : key] = rule;
    }
  }
  rules.epsilon = p.Float("epsilon");
  rules.gamma = p.Float("gamma");
  rules.alpha = p.Float("alpha");
  rules.beta = p.Float("beta");
  rules.zero_bias = p.Str("bias") == "zero";
  rules.fold_batch_norm = p.Str("batch_norm") == "fold";
  if (UsesRule(rules, LrpRule::kAlphaBeta) && std::abs(rules.alpha - rules.beta - 1.0) > 1e-12)
    throw UsageError("lrp: the alpha-beta rule needs alpha - beta = 1 to conserve relevance; got --alpha " +
                     JoinNumbers({rules.alpha}) + " --beta " + JoinNumbers({rules.beta}) + " (e.g. --beta " +
                     JoinNumbers({rules.alpha - 1.0}) + ")");
  if (UsesRule(rules, LrpRule::kZBox)) {
    // The bounds of the normalized input: pixels in [0, 1] through the model's normalization.
    const auto& m = ctx.model.meta();
    for (size_t c = 0; c < m.mean.size(); ++c) {
      rules.low.push_back((0.0 - m.mean[c]) / m.std[c]);
      rules.high.push_back((1.0 - m.mean[c]) / m.std[c]);
    }
    Log().info("lrp: zbox bounds from the model's normalization (pixels in [0, 1]): low {}, high {}",
               JoinNumbers(rules.low), JoinNumbers(rules.high));
  }
  return rules;
}

std::string Counts(const std::map<std::string, int64_t>& counts) {
  std::vector<std::string> parts;
  for (const auto& [name, n] : counts) parts.push_back(name + " " + std::to_string(n));
  return parts.empty() ? "none" : Join(parts, ", ");
}

Json CensusJson(const LrpCensus& census, const std::string& composite) {
  std::map<std::string, int64_t> by_rule;
  Json layers = Json::array();
  int64_t folded = 0;
  for (const auto& l : census.affine) {
    ++by_rule[LrpRuleName(l.rule)];
    Json entry = {{"layer", l.layer}, {"op", l.op}, {"rule", LrpRuleName(l.rule)}};
    if (!l.batch_norm.empty()) {
      entry["batch_norm"] = l.batch_norm;
      ++folded;
    }
    layers.push_back(entry);
  }
  return {{"composite", composite},     {"rules", by_rule},         {"batch_norms_folded", folded},
          {"layers", layers},           {"normalized", census.normalized}, {"passed", census.passed},
          {"ordinary_gradient", census.ordinary}};
}

OptionTable LrpOptions() {
  std::string rules = Join(LrpRuleNames(), ", ");
  return {
      {"composite", OptionType::kString,
       "rules per layer type: epsilon (every layer, Captum's LRP) or a Zennit composite", "epsilon", CompositeNames()},
      {"layer_rules", OptionType::kStringList,
       "overrides KEY=RULE, KEY conv, linear, first or a module path, RULE one of " + rules, Json::array(), {}, {}, {},
       false, "KEY=RULE"},
      {"epsilon", OptionType::kFloat, "stabilizer of every denominator (the epsilon of the epsilon rule)", 1e-9, {}, 0.0,
       1e6},
      {"gamma", OptionType::kFloat, "gamma rule: weight of the positive part added", 0.25, {}, 0.0, 1e6},
      {"alpha", OptionType::kFloat, "alpha-beta rule: weight of the positive part", 2.0, {}, 1.0, 1e6},
      {"beta", OptionType::kFloat, "alpha-beta rule: weight of the negative part (alpha - beta = 1)", 1.0, {}, 0.0, 1e6},
      {"bias", OptionType::kString,
       "keep: biases take their share of the relevance (Captum, Zennit); zero: they leave the denominators, so that "
       "relevance is conserved",
       "keep", {"keep", "zero"}},
      {"batch_norm", OptionType::kString,
       "fold: a batch norm after a convolution or linear layer is folded into it (Zennit's canonizer); layer: it is a "
       "layer of its own under the epsilon rule (Captum)",
       "fold", {"fold", "layer"}},
  };
}

}  // namespace

TechniqueInfo LrpTechnique() {
  return {"lrp", "layer-wise relevance propagation: the target logit redistributed layer by layer (rules per layer)",
          LrpOptions(),
          [](TechniqueContext& ctx) {
            const LrpRules rules = RulesOf(ctx);
            Lens& lens = ctx.model.lens();
            const LrpCensus census = lens.LrpPlan(rules);
            const std::string composite = ctx.params.Str("composite");
            ctx.metrics["lrp"] = CensusJson(census, composite);
            const Json& summary = ctx.metrics["lrp"];
            Log().info("lrp: {} convolution/linear layer(s) by rule: {}; {} batch norm(s) folded; sums and poolings: "
                       "{}; activations passed: {}",
                       census.affine.size(), Counts(summary["rules"].get<std::map<std::string, int64_t>>()),
                       summary["batch_norms_folded"].get<int64_t>(), Counts(census.normalized), Counts(census.passed));
            if (census.affine.empty())
              Warn(ctx, "lrp: the model has no convolution or linear layer the rules apply to; the map is the "
                        "gradient of the ops as they are");
            if (!census.ordinary.empty())
              Warn(ctx, "lrp: relevance passes " + Counts(census.ordinary) +
                            " by their ordinary gradient, which is no LRP rule and does not conserve relevance");
            lens.SetLrpRules(rules);
            // The tally ends here, or when the pass throws.
            struct TallyGuard {
              bool open = true;
              TallyGuard() { BeginLrpTally(); }
              double End() {
                open = false;
                return EndLrpTally();
              }
              ~TallyGuard() {
                if (open) EndLrpTally();
              }
            } tally;
            const Gradients g = TargetGradients(ctx.model, ctx.input.tensor, ctx.target, {}, BackwardRule::kLrp);
            const double absorbed_share = tally.End();
            // Relevance starts as the target logit (Captum's convention): the backward pass carries
            // it normalized to 1.
            const torch::Tensor logit = g.output.select(1, ctx.target);
            const torch::Tensor relevance = g.input_grad * logit.view({-1, 1, 1, 1});
            const double output = logit.sum().to(torch::kFloat64).item<double>();
            const double sum = relevance.sum().to(torch::kFloat64).item<double>();
            // Conservation: what reaches the input plus what the layers absorb (biases, stabilizers)
            // is the target logit, when every op on the way has a rule.
            const double absorbed = absorbed_share * output;
            const double delta = sum + absorbed - output;
            const double relative = std::abs(delta) / std::max(std::abs(output), 1e-12);
            ctx.metrics["conservation"] = {{"sum_relevance", sum}, {"absorbed", absorbed}, {"output", output},
                                           {"delta", delta},       {"relative_delta", relative}};
            Log().info("lrp: relevance {:.6g} at the input + {:.6g} absorbed by biases and stabilizers = {:.6g}, the "
                       "target logit {:.6g} (relative delta {:.2g})",
                       sum, absorbed, sum + absorbed, output, relative);
            if (!std::isfinite(sum) || std::abs(sum) > 100 * std::max(std::abs(output), 1e-12))
              Warn(ctx, "lrp: the relevance at the input (" + JoinNumbers({sum}) +
                            ") dwarfs the target logit: the rules divide by near-zero sums on this model; try "
                            "--composite epsilon-plus-flat or a larger --epsilon (e.g. 0.25)");
            return std::vector<Artifact>{{"lrp", relevance}};
          },
          BatchPass::kNone};
}

}  // namespace netlens
