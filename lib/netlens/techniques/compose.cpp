#include "netlens/techniques/compose.h"

#include "netlens/techniques/registry.h"

namespace netlens {

std::vector<Artifact> RunComposed(TechniqueContext& ctx, const std::string& name, const Json& values,
                                  const std::string& metrics_key) {
  const TechniqueInfo& technique = FindTechnique(name);
  const Params params = ctx.params.Derived(technique.options, values);
  TechniqueContext sub{ctx.model, ctx.input, ctx.target, params};
  std::vector<Artifact> artifacts = technique.run(sub);
  if (!sub.metrics.empty() && !metrics_key.empty()) ctx.metrics[metrics_key] = sub.metrics;
  for (auto& w : sub.warnings) ctx.warnings.push_back(name + ": " + w);
  return artifacts;
}

}  // namespace netlens
