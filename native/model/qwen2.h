// qwen2.h — the Qwen2 / Llama decoder, written once against the backend op interface.
//
// The two architectures differ only in which projections carry a bias (Qwen2: q/k/v;
// Llama: attention_bias on q/k/v/o, mlp_bias on gate/up/down) and in RoPE scaling, both
// read from config.json. Activations are f32; weights stay in their file dtype.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../backend/backend.h"
#include "config.h"
#include "weights.h"

namespace motif {

struct LayerWeights {
  Tensor attn_norm;       // [C]
  Tensor wq, bq;          // [H*D, C], [H*D]
  Tensor wk, bk, wv, bv;  // [Hkv*D, C], [Hkv*D]
  Tensor wo, bo;          // [C, H*D], [C]
  Tensor mlp_norm;        // [C]
  Tensor w_gate, b_gate;  // [I, C], [I]
  Tensor w_up, b_up;      // [I, C], [I]
  Tensor w_down, b_down;  // [C, I], [C]
};

class Qwen2Model {
 public:
  Qwen2Model(const std::string& dir, std::unique_ptr<Backend> backend);

  const ModelConfig& config() const { return cfg_; }
  Backend& backend() { return *backend_; }
  size_t weight_bytes() const { return weight_bytes_; }
  DType weight_dtype() const { return weight_dtype_; }

  // See model_forward in motif.h. logits is a host buffer [T, V].
  void forward(const int32_t* tokens, const int32_t* seq_lens, int32_t n_seqs, float* logits);

 private:
  Tensor load(const std::string& name, const std::vector<int64_t>& shape);
  Tensor load_optional(bool present, const std::string& name, const std::vector<int64_t>& shape);

  ModelConfig cfg_;
  WeightStore store_;
  std::unique_ptr<Backend> backend_;
  Tensor embed_, final_norm_, lm_head_;
  std::vector<LayerWeights> layers_;
  Tensor inv_freq_;  // [D/2] f32, backend memory
  void* inv_freq_buf_ = nullptr;
  size_t weight_bytes_ = 0;
  DType weight_dtype_ = DType::F32;

 public:
  ~Qwen2Model();
};

}  // namespace motif
