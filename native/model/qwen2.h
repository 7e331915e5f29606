// qwen2.h — the Qwen2 / Llama decoder, written once against the backend op interface.
//
// The two architectures differ only in which projections carry a bias (Qwen2: q/k/v;
// Llama: attention_bias on q/k/v/o, mlp_bias on gate/up/down) and in RoPE scaling, both
// read from config.json. Activations are f32; weights stay in their file dtype.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../backend/backend.h"
#include "config.h"
#include "full-params.h"
#include "lora.h"
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

// One step of the engine: rows of tokens from several sequences, each row writing its K/V into
// the paged cache at `slots[t]` and attending to its sequence's keys 0..positions[t].
struct StepBatch {
  std::vector<int32_t> tokens;        // [T]
  std::vector<int32_t> positions;     // [T]
  std::vector<int32_t> slots;         // [T] block * block_size + offset
  std::vector<int32_t> row_seq;       // [T] row of block_tables
  std::vector<int32_t> block_tables;  // [n_seqs, max_blocks], -1 padded
  int32_t n_seqs = 0;
  int32_t max_blocks = 0;
  std::vector<int32_t> logit_rows;  // rows whose logits are wanted, in output order
};

// The paged K/V storage of every layer: k[l], v[l] are [n_blocks, block_size, Hkv, D] f32.
struct KvStorage {
  std::vector<Tensor> k, v;
  int32_t block_size = 0;
};

// Grow-only scratch buffers in backend memory, reused across calls (calls are serialized).
class ScratchArena {
 public:
  explicit ScratchArena(Backend& b) : backend_(b) {}
  ~ScratchArena();
  // Slot `slot` as a tensor of `type` and shape (d0, d1, d2), reallocated when too small.
  Tensor get(int slot, DType type, int64_t d0, int64_t d1 = -1, int64_t d2 = -1);

 private:
  Backend& backend_;
  std::vector<std::pair<void*, size_t>> bufs_;
};

class Qwen2Model {
 public:
  // `how`: whether the weight files are mapped or read into (huge-page) memory (core/file.h).
  Qwen2Model(const std::string& dir, std::unique_ptr<Backend> backend, FileLoad how = FileLoad::Map);

  const ModelConfig& config() const { return cfg_; }
  Backend& backend() { return *backend_; }
  size_t weight_bytes() const { return weight_bytes_; }
  DType weight_dtype() const { return weight_dtype_; }

  // See model_forward in motif.h. logits is a host buffer [T, V].
  void forward(const int32_t* tokens, const int32_t* seq_lens, int32_t n_seqs, float* logits);

  // One engine step over the paged cache; logits: host buffer [logit_rows.size(), V].
  void forward_step(const StepBatch& batch, const KvStorage& kv, float* logits);

  // --- LoRA, full-parameter training and the training pass (qwen2-train.cpp) -------------------
  LoraAdapter* lora() { return lora_.get(); }
  // Attaches (replacing any) LoRA adapter; refused once full-parameter training is on.
  void set_lora(std::unique_ptr<LoraAdapter> a);
  void set_lora_enabled(bool on) { lora_enabled_ = on; }
  bool lora_enabled() const { return lora_enabled_; }
  // Makes every weight an f32 trainable tensor (full-params.h); refused while a LoRA adapter is
  // attached; a second call does nothing.
  void enable_full_training();
  FullParams* full() { return full_.get(); }
  // What lossAndGradients and optimizerStep train: the full parameters, else the adapter (or null).
  TrainableSet* trainable() {
    return full_ ? static_cast<TrainableSet*>(full_.get()) : static_cast<TrainableSet*>(lora_.get());
  }
  // The weights forward() runs with: the active adapter's version, else the full parameters'
  // version when they are being trained, else 0 (the weights as loaded).
  uint64_t weights_version() const {
    if (lora_ && lora_enabled_) return lora_->version();
    return full_ ? full_->version() : 0;
  }

  // Packed training sequences: row t of the batch predicts targets[t] (-1: no loss on that row).
  struct TrainRows {
    std::vector<int32_t> tokens;      // [T]
    std::vector<int32_t> seq_starts;  // [n + 1]
    std::vector<int32_t> targets;     // [T]
  };
  // d(loss)/d(logp) per row from the rows' log-probs (host arrays of T entries).
  using CoefFn = std::function<void(const std::vector<float>& logp, std::vector<float>& coef)>;
  // Log-probs of every row's target under logits / temperature (0 where the target is -1). With
  // coef_fn, also backpropagates sum_t coef[t] * logp[t] into the adapter's gradient accumulators
  // (gradient checkpointing: layer inputs are kept, each layer is recomputed during backward).
  std::vector<float> train_pass(const TrainRows& rows, float temperature, const CoefFn* coef_fn);

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
  std::unique_ptr<ScratchArena> arena_;
  std::unique_ptr<LoraAdapter> lora_;
  bool lora_enabled_ = true;
  std::unique_ptr<FullParams> full_;

  // x @ w^T (+ bias) (+ the LoRA term of (layer, target) when active); LoRA scratch in tmp_slot.
  void project(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias, int64_t layer, int target,
               int tmp_slot);
  // Backward of project: dx (=, or += when accumulate) dy @ w plus the LoRA term; the LoRA gradients,
  // or with full-parameter training those of w and bias, accumulate.
  void project_backward(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& bias,
                        int64_t layer, int target, bool accumulate);
  // With full-parameter training: the gradient of rmsnorm(x) * w's scale w from dy accumulates.
  void norm_weight_backward(const Tensor& dy, const Tensor& x, const Tensor& w);
  // With full-parameter training, the gradient accumulator of weight `w`; else (or for an absent
  // bias) null.
  const Tensor* full_grad(const Tensor& w) const { return full_ ? full_->grad_of(w) : nullptr; }
  LoraParam* active_lora(int64_t layer, int target) {
    return lora_ && lora_enabled_ ? lora_->get(layer, target) : nullptr;
  }

 public:
  ~Qwen2Model();
};

}  // namespace motif
