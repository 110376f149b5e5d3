// Attention-based maps of vision transformers (attention.cpp: rollout, heads, Chefer et al.).
#pragma once

#include "netlens/techniques/technique.h"

namespace netlens {

TechniqueInfo AttentionRolloutTechnique();
TechniqueInfo AttentionHeadsTechnique();
TechniqueInfo TransformerAttributionTechnique();

}  // namespace netlens
