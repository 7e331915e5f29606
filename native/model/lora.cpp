// lora.cpp — the LoRA adapter declared in lora.h.
#include "lora.h"

#include <cmath>
#include <random>

#include "../core/status.h"

namespace motif {

const char* lora_target_name(int target) {
  static const char* names[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return target >= 0 && target < kNumLoraTargets ? names[target] : "?";
}

static std::string peft_prefix(int64_t layer, int target) {
  const bool attn = target <= kLoraO;
  return "base_model.model.model.layers." + std::to_string(layer) + (attn ? ".self_attn." : ".mlp.") +
         lora_target_name(target);
}

LoraAdapter::LoraAdapter(Backend& backend, const ModelConfig& c, const LoraConfig& lc)
    : TrainableSet(backend, "the adapter"), cfg_(lc) {
  MOTIF_CHECK(lc.rank >= 1 && lc.rank <= 4096, InvalidArgument, "LoRA rank must be in [1, 4096]");
  MOTIF_CHECK(std::isfinite(lc.alpha) && lc.alpha > 0, InvalidArgument, "LoRA alpha must be positive");
  MOTIF_CHECK(lc.targets != 0 && (lc.targets >> kNumLoraTargets) == 0, InvalidArgument,
              "LoRA targets: choose at least one projection");
  scale_ = lc.rslora ? float(lc.alpha / std::sqrt(double(lc.rank))) : float(lc.alpha / double(lc.rank));
  const int64_t C = c.hidden_size, I = c.intermediate_size, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  const int64_t dims[kNumLoraTargets][2] = {{C, q}, {C, kv}, {C, kv}, {q, C}, {C, I}, {C, I}, {I, C}};  // in, out
  params_.resize(size_t(c.n_layers) * kNumLoraTargets);
  std::mt19937_64 rng(lc.seed);
  const int64_t r = lc.rank;
  for (int64_t l = 0; l < c.n_layers; l++) {
    for (int p = 0; p < kNumLoraTargets; p++) {
      if (!(lc.targets & (1u << p))) continue;
      LoraParam& lp = params_[size_t(l) * kNumLoraTargets + size_t(p)];
      lp.present = true;
      lp.in = dims[p][0];
      lp.out = dims[p][1];
      // PEFT: kaiming_uniform_(A, a=sqrt(5)) -> bound = 1/sqrt(fan_in); B = 0.
      std::vector<float> a(size_t(r * lp.in));
      std::uniform_real_distribution<float> dist(-1.0f / std::sqrt(float(lp.in)), 1.0f / std::sqrt(float(lp.in)));
      for (auto& x : a) x = dist(rng);
      lp.a = alloc({r, lp.in}, a.data());
      lp.b = alloc({lp.out, r}, nullptr);
      const std::string a_name = peft_prefix(l, p) + ".lora_A.weight", b_name = peft_prefix(l, p) + ".lora_B.weight";
      add(a_name, lp.a, true);
      add(b_name, lp.b, true);
      lp.ga = tensor(a_name, "grad");
      lp.gb = tensor(b_name, "grad");
    }
  }
}

}  // namespace motif
