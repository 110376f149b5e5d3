#include "netlens/techniques/registry.h"

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"
#include "netlens/techniques/attention.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/cam.h"
#include "netlens/techniques/gradient_family.h"
#include "netlens/techniques/optvis_family.h"
#include "netlens/techniques/overview_family.h"

namespace netlens {

const std::vector<TechniqueInfo>& Techniques() {
  // One line per technique, in the order `netlens list` shows them.
  static const std::vector<TechniqueInfo> techniques{
      SaliencyTechnique(),
      GuidedTechnique(),
      DeconvnetTechnique(),
      InputXGradientTechnique(),
      GradCamTechnique(),
      GuidedGradCamTechnique(),
      GradCamPlusPlusTechnique(),
      XGradCamTechnique(),
      LayerCamTechnique(),
      HiResCamTechnique(),
      ScoreCamTechnique(),
      AblationCamTechnique(),
      EigenCamTechnique(),
      AttentionRolloutTechnique(),
      AttentionHeadsTechnique(),
      TransformerAttributionTechnique(),
      SmoothGradTechnique(),
      IntegratedGradientsTechnique(),
      OcclusionTechnique(),
      LayerGradientTechnique(),
      LayerConductanceTechnique(),
      InternalInfluenceTechnique(),
      NeuronConductanceTechnique(),
      GradientShapTechnique(),
      DeepLiftTechnique(),
      DeepLiftShapTechnique(),
      LrpTechnique(),
      FeatureAblationTechnique(),
      KernelShapTechnique(),
      LimeTechnique(),
      FeaturevisTechnique(),
      DeepDreamTechnique(),
      InvertTechnique(),
      StyleTechnique(),
      GistTechnique(),
      FactorizeTechnique(),
      EvaluateTechnique(),
  };
  return techniques;
}

const TechniqueInfo& FindTechnique(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& t : Techniques()) {
    if (t.name == name) return t;
    names.push_back(t.name);
  }
  std::string msg = "unknown technique " + Quote(name);
  const std::string hint = DidYouMean(name, names);
  if (!hint.empty()) msg += "; " + hint;
  throw UsageError(msg + " (netlens list shows all " + std::to_string(names.size()) + ")");
}

}  // namespace netlens
