#include "netlens/model/lrp.h"

#include <sstream>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"

namespace netlens {
namespace {

struct NamedRule {
  const char* name;
  LrpRule rule;
};
constexpr NamedRule kRules[] = {
    {"epsilon", LrpRule::kEpsilon}, {"gamma", LrpRule::kGamma}, {"alpha-beta", LrpRule::kAlphaBeta},
    {"zplus", LrpRule::kZPlus},     {"flat", LrpRule::kFlat},   {"wsquare", LrpRule::kWSquare},
    {"zbox", LrpRule::kZBox},
};

struct Composite {
  const char* name;
  LrpRule conv, dense;
  bool has_first;
  LrpRule first;
};
// Zennit's composites (composites.py) by their names there, and Captum's LRP default.
constexpr Composite kComposites[] = {
    {"epsilon", LrpRule::kEpsilon, LrpRule::kEpsilon, false, LrpRule::kEpsilon},
    {"epsilon-plus", LrpRule::kZPlus, LrpRule::kEpsilon, false, LrpRule::kEpsilon},
    {"epsilon-plus-flat", LrpRule::kZPlus, LrpRule::kEpsilon, true, LrpRule::kFlat},
    {"epsilon-gamma-box", LrpRule::kGamma, LrpRule::kEpsilon, true, LrpRule::kZBox},
    {"epsilon-alpha2-beta1", LrpRule::kAlphaBeta, LrpRule::kEpsilon, false, LrpRule::kEpsilon},
    {"epsilon-alpha2-beta1-flat", LrpRule::kAlphaBeta, LrpRule::kEpsilon, true, LrpRule::kFlat},
};

}  // namespace

std::vector<std::string> LrpRuleNames() {
  std::vector<std::string> names;
  for (const auto& r : kRules) names.push_back(r.name);
  return names;
}

LrpRule ParseLrpRule(const std::string& name) {
  if (name == "alpha1-beta0") return LrpRule::kZPlus;
  for (const auto& r : kRules)
    if (name == r.name) return r.rule;
  std::string msg = "unknown LRP rule " + Quote(name);
  const std::string hint = DidYouMean(name, LrpRuleNames());
  if (!hint.empty()) msg += "; " + hint;
  throw UsageError(msg + " (rules: " + Join(LrpRuleNames(), ", ") + ")");
}

std::string LrpRuleName(LrpRule rule) {
  for (const auto& r : kRules)
    if (r.rule == rule) return r.name;
  return "?";
}

std::vector<std::string> CompositeNames() {
  std::vector<std::string> names;
  for (const auto& c : kComposites) names.push_back(c.name);
  return names;
}

LrpRules CompositeRules(const std::string& name) {
  for (const auto& c : kComposites) {
    if (name != c.name) continue;
    LrpRules rules;
    rules.conv = c.conv;
    rules.dense = c.dense;
    rules.has_first = c.has_first;
    rules.first = c.first;
    return rules;
  }
  std::string msg = "unknown LRP composite " + Quote(name);
  const std::string hint = DidYouMean(name, CompositeNames());
  if (!hint.empty()) msg += "; " + hint;
  throw UsageError(msg + " (composites: " + Join(CompositeNames(), ", ") + ")");
}

std::string LrpRules::Key() const {
  std::ostringstream key;
  key.precision(17);
  key << "lrp:" << static_cast<int>(conv) << static_cast<int>(dense) << (has_first ? static_cast<int>(first) : -1)
      << ':' << epsilon << ',' << gamma << ',' << alpha << ',' << beta << ',' << zero_bias << fold_batch_norm;
  for (double v : low) key << ",l" << v;
  for (double v : high) key << ",h" << v;
  for (const auto& [path, rule] : layers) key << ';' << path << '=' << static_cast<int>(rule);
  return key.str();
}

std::vector<double> LrpParams(const LrpRules& rules) {
  return {rules.epsilon, rules.gamma, rules.alpha, rules.beta, rules.zero_bias ? 1.0 : 0.0};
}

}  // namespace netlens
