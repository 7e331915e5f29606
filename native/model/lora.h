// lora.h — a trainable LoRA adapter held by the model: per layer and targeted projection, A [r, in]
// and B [out, r] in f32, their accumulated gradients and AdamW moments, all in backend memory.
//
// Names follow HF PEFT (base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight ...), so
// adapters saved by lib/train/peft.ts load in PEFT and vLLM. Initialization is PEFT's: A is
// Kaiming-uniform with a = sqrt(5) (uniform in +-1/sqrt(in)), B is zero; scale = alpha / r, or
// alpha / sqrt(r) with rsLoRA.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "../backend/backend.h"
#include "../include/motif.h"

namespace motif {

enum LoraTarget : int { kLoraQ = 0, kLoraK, kLoraV, kLoraO, kLoraGate, kLoraUp, kLoraDown, kNumLoraTargets };
const char* lora_target_name(int target);  // "q_proj" ...

struct LoraParam {
  bool present = false;
  int64_t in = 0, out = 0;
  Tensor a, b;            // [r, in], [out, r]
  Tensor ga, gb;          // accumulated gradients
  Tensor ma, va, mb, vb;  // AdamW first and second moments
};

class LoraAdapter {
 public:
  LoraAdapter(Backend& backend, const ModelConfig& cfg, const LoraConfig& lc);
  ~LoraAdapter();
  LoraAdapter(const LoraAdapter&) = delete;
  LoraAdapter& operator=(const LoraAdapter&) = delete;

  const LoraConfig& config() const { return cfg_; }
  float scale() const { return scale_; }
  LoraParam* get(int64_t layer, int target) {
    LoraParam& p = params_[size_t(layer) * kNumLoraTargets + size_t(target)];
    return p.present ? &p : nullptr;
  }
  // Every tensor by PEFT name: lora_A/lora_B weights.
  std::vector<std::string> names() const;
  // The tensor called `name` (weights; with `suffix` "grad", "exp_avg", "exp_avg_sq" the others).
  Tensor tensor(const std::string& name, const std::string& which) const;
  void zero_grads();
  int64_t step = 0;  // optimizer steps taken
  // Identifies the current weights: a fresh value, unique in the process, after every change
  // (creation, a write, an optimizer step). The prefix cache keys blocks by it, so K/V computed
  // under older weights is never reused.
  uint64_t version() const { return version_; }
  void mark_changed();
  std::vector<LoraParam>& params() { return params_; }

 private:
  Backend& backend_;
  LoraConfig cfg_;
  float scale_ = 1.0f;
  uint64_t version_ = 0;
  std::vector<LoraParam> params_;  // [L * kNumLoraTargets]
  std::vector<void*> buffers_;
  std::vector<std::string> names_;
};

}  // namespace motif
