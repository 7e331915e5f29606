// lora.h — a trainable LoRA adapter held by the model: per layer and targeted projection, A [r, in]
// and B [out, r] in f32, their accumulated gradients and AdamW moments, all in backend memory.
//
// Names follow HF PEFT (base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight ...), so
// adapters saved by lib/train/peft.ts load in PEFT and vLLM. Initialization is PEFT's: A is
// Kaiming-uniform with a = sqrt(5) (uniform in +-1/sqrt(in)), B is zero; scale = alpha / r, or
// alpha / sqrt(r) with rsLoRA.
#pragma once

#include <string>
#include <vector>

#include "../backend/backend.h"
#include "../include/motif.h"
#include "trainable.h"

namespace motif {

enum LoraTarget : int { kLoraQ = 0, kLoraK, kLoraV, kLoraO, kLoraGate, kLoraUp, kLoraDown, kNumLoraTargets };
const char* lora_target_name(int target);  // "q_proj" ...

struct LoraParam {
  bool present = false;
  int64_t in = 0, out = 0;
  Tensor a, b;    // [r, in], [out, r]
  Tensor ga, gb;  // their accumulated gradients (the TrainableSet's "grad" tensors)
};

// The adapter's tensors are the TrainableSet's (names, gradients, moments, step, version); get()
// indexes the same buffers by (layer, projection) for the forward and backward passes.
class LoraAdapter : public TrainableSet {
 public:
  LoraAdapter(Backend& backend, const ModelConfig& cfg, const LoraConfig& lc);

  const LoraConfig& config() const { return cfg_; }
  float scale() const { return scale_; }
  LoraParam* get(int64_t layer, int target) {
    LoraParam& p = params_[size_t(layer) * kNumLoraTargets + size_t(target)];
    return p.present ? &p : nullptr;
  }

 private:
  LoraConfig cfg_;
  float scale_ = 1.0f;
  std::vector<LoraParam> params_;  // [L * kNumLoraTargets]
};

}  // namespace motif
