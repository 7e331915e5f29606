// grpo.h — TRL's GRPO loss and its gradient for the model's LoRA adapter (see grpo.cpp).
#pragma once

#include <string>
#include <vector>

#include "../include/motif.h"
#include "qwen2.h"

namespace motif {

// Group-relative advantages: (r - mean) / (std + 1e-4) per group (unbiased std; 'batch' uses the
// whole batch's std, 'none' does not divide).
std::vector<float> grpo_advantages(const std::vector<float>& rewards, int32_t group_size, const std::string& scale);

// Loss, log-probs and statistics; when `backward`, gradients (times grad_scale) are added to the
// adapter's accumulators.
GrpoResult grpo_loss_and_grads(Qwen2Model& model, const GrpoBatch& batch, float grad_scale, bool backward);

}  // namespace motif
