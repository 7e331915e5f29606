// backend.h — the op interface every backend implements, and the backend registry.
//
// Model code (native/model/) is written once against this interface and never includes
// a backend's own headers. The CPU backend (always built) is the reference: its `use_ref`
// mode runs the plain loops of cpu/ref.cpp, the spec every other path is tested against
// (test/native/test-backend-ops.cpp). The CUDA backend implements the same ops.
//
// Tensors passed to ops live in the backend's memory (alloc/upload). Activations are f32;
// weight operands may be f32, f16 or bf16. Ops may assume contiguous row-major views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace motif {

enum class Op : int32_t {
#define MOTIF_OP(name, summary) name,
#include "ops.def"
#undef MOTIF_OP
  Count
};

const char* op_name(Op op);
const char* op_summary(Op op);

// Packed variable-length sequences: sequence s owns tokens [seq_starts[s], seq_starts[s+1]).
struct AttentionParams {
  const int32_t* seq_starts = nullptr;  // host array [n_seqs + 1]
  int32_t n_seqs = 0;
  int32_t n_heads = 0;     // H
  int32_t n_kv_heads = 0;  // Hkv (H % Hkv == 0; query head h reads kv head h / (H / Hkv))
  int32_t head_dim = 0;    // D
  float scale = 1.0f;      // usually 1/sqrt(D)
};

// Attention over the paged KV cache. Row t of the batch belongs to the sequence whose block
// table is row row_seq[t] of block_tables, sits at position row_pos[t], and attends to that
// sequence's keys 0..row_pos[t] (their K/V already stored). Key j lives in block
// block_tables[s, j / block_size] at offset j % block_size.
struct PagedAttentionParams {
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_size = 0;
  float scale = 1.0f;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;

  // --- memory -------------------------------------------------------------------
  virtual void* alloc(size_t bytes) = 0;
  virtual void release(void* ptr) = 0;
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;    // host -> backend
  virtual void download(void* dst, const void* src, size_t bytes) = 0;  // backend -> host
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;      // backend -> backend
  virtual void synchronize() {}
  // Makes a weight the model mapped from a file usable by this backend. The CPU uses the
  // mapping in place; a GPU copies it to device memory (kept until the backend dies).
  virtual Tensor adopt_weight(const Tensor& host) = 0;

  // Whether this backend implements `op` for weight dtype `wtype` (default: all).
  virtual bool supports_op(Op op, DType wtype) const {
    (void)op;
    (void)wtype;
    return true;
  }

  // --- ops (see ops.def for the shapes) -----------------------------------------
  virtual void embedding_forward(const Tensor& out, const Tensor& table, const Tensor& ids) = 0;
  virtual void rmsnorm_forward(const Tensor& out, const Tensor& x, const Tensor& w, float eps) = 0;
  // bias may be absent (data == nullptr).
  virtual void matmul_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias) = 0;
  // x is [T, H, D]; pos [T] i32; inv_freq [D/2] f32.
  virtual void rope_forward(const Tensor& x, const Tensor& pos, const Tensor& inv_freq) = 0;
  // q [T,H,D], k/v [T,Hkv,D] -> out [T,H*D].
  virtual void attention_forward(const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttentionParams& p) = 0;
  virtual void swiglu_forward(const Tensor& out, const Tensor& gate, const Tensor& up) = 0;
  virtual void add_forward(const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // --- training ops (training.cpp on the CPU) ---------------------------------------
  // out [T,N] += scale * (x [T,K] a[r,K]^T) b[N,r]^T; tmp [T,r] receives x a^T (reused by backward).
  virtual void lora_forward(const Tensor& out, const Tensor& tmp, const Tensor& x, const Tensor& a, const Tensor& b,
                            float scale) = 0;
  // dx [T,K] = dy [T,N] @ w [N,K] (accumulate: dx +=).
  virtual void matmul_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, bool accumulate) = 0;
  // dw [N,K] += scale * dy[T,N]^T @ x[T,K].
  virtual void matmul_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, float scale) = 0;
  // dx [T,C] += the gradient through out = x * rsqrt(mean(x^2)+eps) * w, given dy [T,C].
  virtual void rmsnorm_backward(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& w, float eps) = 0;
  // The weight gradients full-parameter training adds (LoRA never needs them); all f32.
  // dw [C] += sum over rows of dy * x * rsqrt(mean(x^2)+eps), the gradient of rmsnorm's scale.
  virtual void rmsnorm_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, float eps) = 0;
  // db [N] += the column sums of dy [T,N].
  virtual void bias_backward(const Tensor& db, const Tensor& dy) = 0;
  // dtable [V,C] += dx [T,C] row t added to row ids[t] (repeated ids add up).
  virtual void embedding_backward(const Tensor& dtable, const Tensor& dx, const Tensor& ids) = 0;
  // dx [T,H,D] in place: the inverse rotation of rope_forward.
  virtual void rope_backward(const Tensor& dx, const Tensor& pos, const Tensor& inv_freq) = 0;
  // From dout [T,H*D] and the forward's q/k/v: dq [T,H,D], dk, dv [T,Hkv,D] (overwritten).
  virtual void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                                  const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) = 0;
  // dgate, dup [T,I] (overwritten) from dout [T,I] and the forward's gate, up.
  virtual void swiglu_backward(const Tensor& dgate, const Tensor& dup, const Tensor& dout, const Tensor& gate,
                               const Tensor& up) = 0;
  // Vocab chunk [v0, v0+Vc) of logits [T,Vc]: running_max/running_sum [T] keep an online log-sum-exp of
  // logits/temp (start at -inf / 0); target_logit [T] receives logits[t, target[t]-v0] when in the chunk.
  virtual void lmhead_lse_forward(const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp,
                                  const Tensor& running_max, const Tensor& running_sum, const Tensor& target_logit) = 0;
  // Replaces logits [T,Vc] by coef[t] * (onehot(target[t]) - exp(logits*inv_temp - lse[t])) * inv_temp.
  virtual void lmhead_grad_forward(const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp,
                                   const Tensor& lse, const Tensor& coef) = 0;
  // x [n] *= s, in place.
  virtual void scale_forward(const Tensor& x, float s) = 0;
  // One AdamW step (PyTorch's AdamW: decoupled weight decay, bias-corrected moments) on p, m, v from g.
  virtual void adamw_update(const Tensor& p, const Tensor& m, const Tensor& v, const Tensor& g, float lr, float beta1,
                            float beta2, float eps, float weight_decay, int64_t step) = 0;

  // k_cache/v_cache [n_blocks, BS, Hkv, D] f32; k/v [T, Hkv, D]; slots [T] i32.
  virtual void kv_store_forward(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                                const Tensor& slots) = 0;
  // q [T,H,D]; caches as above; block_tables [n_seqs, max_blocks] i32; row_seq, row_pos [T] i32.
  virtual void paged_attention_forward(const Tensor& out, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                       const Tensor& block_tables, const Tensor& row_seq, const Tensor& row_pos,
                                       const PagedAttentionParams& p) = 0;
};

// --- registry -----------------------------------------------------------------------

struct BackendOptions {
  int n_threads = 0;     // CPU worker threads; 0 = the default for this machine
  bool use_ref = false;  // CPU: run the plain reference loops (the spec) instead of the fast paths
  int device = 0;        // CUDA device index
};

// Backends compiled into this build ("cpu", and "cuda" when built with CUDA).
std::vector<std::string> backends_compiled();
// Creates a backend by name. Throws Unsupported when it is not compiled in or no device
// exists (the message says which).
std::unique_ptr<Backend> backend_create(const std::string& name, const BackendOptions& opts);

// The CPU backend (always present).
std::unique_ptr<Backend> backend_cpu_create(const BackendOptions& opts);

// What this build's CPU code uses: "avx2+fma+f16c", "neon" or "scalar".
const char* cpu_simd_level();

// CUDA devices seen by this process (empty without CUDA support, a driver or a GPU), and
// why none were seen when that is so.
struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  size_t total_memory = 0;
  int compute_major = 0;
  int compute_minor = 0;
};
std::vector<CudaDeviceInfo> cuda_devices(std::string* why_none);

}  // namespace motif
