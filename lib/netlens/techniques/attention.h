// Attention-based maps of vision transformers (attention.cpp: rollout, Chefer et al.).
#pragma once

#include "netlens/techniques/technique.h"

namespace netlens {

TechniqueInfo AttentionRolloutTechnique();
TechniqueInfo TransformerAttributionTechnique();

}  // namespace netlens
