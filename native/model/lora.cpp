// lora.cpp — the LoRA adapter declared in lora.h.
#include "lora.h"

#include <atomic>
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

void LoraAdapter::mark_changed() {
  static std::atomic<uint64_t> next{1};
  version_ = next.fetch_add(1);
}

LoraAdapter::LoraAdapter(Backend& backend, const ModelConfig& c, const LoraConfig& lc) : backend_(backend), cfg_(lc) {
  mark_changed();
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
  auto alloc = [&](int64_t rows, int64_t cols, const std::vector<float>* init) {
    Tensor t = make_tensor(DType::F32, nullptr, rows, cols);
    t.data = backend_.alloc(t.nbytes());
    buffers_.push_back(t.data);
    if (init) {
      backend_.upload(t.data, init->data(), t.nbytes());
    } else {
      std::vector<float> zeros(size_t(rows * cols), 0.0f);
      backend_.upload(t.data, zeros.data(), t.nbytes());
    }
    return t;
  };
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
      lp.a = alloc(r, lp.in, &a);
      lp.b = alloc(lp.out, r, nullptr);
      lp.ga = alloc(r, lp.in, nullptr);
      lp.gb = alloc(lp.out, r, nullptr);
      lp.ma = alloc(r, lp.in, nullptr);
      lp.va = alloc(r, lp.in, nullptr);
      lp.mb = alloc(lp.out, r, nullptr);
      lp.vb = alloc(lp.out, r, nullptr);
      names_.push_back(peft_prefix(l, p) + ".lora_A.weight");
      names_.push_back(peft_prefix(l, p) + ".lora_B.weight");
    }
  }
}

LoraAdapter::~LoraAdapter() {
  for (void* p : buffers_) backend_.release(p);
}

std::vector<std::string> LoraAdapter::names() const { return names_; }

Tensor LoraAdapter::tensor(const std::string& name, const std::string& which) const {
  for (size_t i = 0; i < params_.size(); i++) {
    const LoraParam& p = params_[i];
    if (!p.present) continue;
    const std::string prefix = peft_prefix(int64_t(i / kNumLoraTargets), int(i % kNumLoraTargets));
    const bool is_a = name == prefix + ".lora_A.weight", is_b = name == prefix + ".lora_B.weight";
    if (!is_a && !is_b) continue;
    if (which == "weight") return is_a ? p.a : p.b;
    if (which == "grad") return is_a ? p.ga : p.gb;
    if (which == "exp_avg") return is_a ? p.ma : p.mb;
    if (which == "exp_avg_sq") return is_a ? p.va : p.vb;
    throw Error(ErrorCode::InvalidArgument, "unknown LoRA tensor kind '" + which + "'");
  }
  throw Error(ErrorCode::InvalidArgument, "the adapter has no tensor '" + name + "'");
}

void LoraAdapter::zero_grads() {
  for (auto& p : params_) {
    if (!p.present) continue;
    std::vector<float> za(size_t(p.ga.numel()), 0.0f), zb(size_t(p.gb.numel()), 0.0f);
    backend_.upload(p.ga.data, za.data(), p.ga.nbytes());
    backend_.upload(p.gb.data, zb.data(), p.gb.nbytes());
  }
}

}  // namespace motif
