// ops-cpu.h — the CPU implementations of the ops in ops.def.
//
// ref::  the plain loops (fp32, fixed accumulation order): the spec, and what every other
//        implementation (fast CPU paths, CUDA kernels) is tested against.
// fast:: the default paths: threaded, SIMD. An op without a fast path calls its ref.
#pragma once

#include "../../core/threadpool.h"
#include "../backend.h"

namespace motif {
namespace ref {
void embedding_forward(const Tensor& out, const Tensor& table, const Tensor& ids);
void rmsnorm_forward(const Tensor& out, const Tensor& x, const Tensor& w, float eps);
void matmul_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias);
void rope_forward(const Tensor& x, const Tensor& pos, const Tensor& inv_freq);
void attention_forward(const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p);
void swiglu_forward(const Tensor& out, const Tensor& gate, const Tensor& up);
void add_forward(const Tensor& out, const Tensor& a, const Tensor& b);
void kv_store_forward(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                      const Tensor& slots);
void paged_attention_forward(const Tensor& out, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                             const Tensor& block_tables, const Tensor& row_seq, const Tensor& row_pos,
                             const PagedAttentionParams& p);
void lora_forward(const Tensor& out, const Tensor& tmp, const Tensor& x, const Tensor& a, const Tensor& b, float scale);
void matmul_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, bool accumulate);
void matmul_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, float scale);
void rmsnorm_backward(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& w, float eps);
void rmsnorm_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, float eps);
void bias_backward(const Tensor& db, const Tensor& dy);
void embedding_backward(const Tensor& dtable, const Tensor& dx, const Tensor& ids);
void rope_backward(const Tensor& dx, const Tensor& pos, const Tensor& inv_freq);
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const AttentionParams& p);
void swiglu_backward(const Tensor& dgate, const Tensor& dup, const Tensor& dout, const Tensor& gate, const Tensor& up);
void lmhead_lse_forward(const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp,
                        const Tensor& running_max, const Tensor& running_sum, const Tensor& target_logit);
void lmhead_grad_forward(const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp, const Tensor& lse,
                         const Tensor& coef);
void adamw_update(const Tensor& p, const Tensor& m, const Tensor& v, const Tensor& g, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step);
void scale_forward(const Tensor& x, float s);
}  // namespace ref

namespace fast {
void embedding_forward(ThreadPool& pool, const Tensor& out, const Tensor& table, const Tensor& ids);
void rmsnorm_forward(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, float eps);
void matmul_forward(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias);
// out += scale · x · wᵀ (not an op of its own: the fast path of lora_forward's second product).
void matmul_accumulate(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, float scale);
void rope_forward(ThreadPool& pool, const Tensor& x, const Tensor& pos, const Tensor& inv_freq);
void attention_forward(ThreadPool& pool, const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionParams& p);
void swiglu_forward(ThreadPool& pool, const Tensor& out, const Tensor& gate, const Tensor& up);
void add_forward(ThreadPool& pool, const Tensor& out, const Tensor& a, const Tensor& b);
void kv_store_forward(ThreadPool& pool, const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                      const Tensor& slots);
void paged_attention_forward(ThreadPool& pool, const Tensor& out, const Tensor& q, const Tensor& k_cache,
                             const Tensor& v_cache, const Tensor& block_tables, const Tensor& row_seq,
                             const Tensor& row_pos, const PagedAttentionParams& p);
void lora_forward(ThreadPool& pool, const Tensor& out, const Tensor& tmp, const Tensor& x, const Tensor& a,
                  const Tensor& b, float scale);
void matmul_backward_input(ThreadPool& pool, const Tensor& dx, const Tensor& dy, const Tensor& w, bool accumulate);
void matmul_backward_weight(ThreadPool& pool, const Tensor& dw, const Tensor& dy, const Tensor& x, float scale);
void lmhead_lse_forward(ThreadPool& pool, const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp,
                        const Tensor& running_max, const Tensor& running_sum, const Tensor& target_logit);
void lmhead_grad_forward(ThreadPool& pool, const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp,
                         const Tensor& lse, const Tensor& coef);
}  // namespace fast

// Shape checks shared by every implementation of an op (they throw InvalidArgument).
namespace opcheck {
void embedding(const Tensor& out, const Tensor& table, const Tensor& ids);
void rmsnorm(const Tensor& out, const Tensor& x, const Tensor& w);
void matmul(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias);
void rope(const Tensor& x, const Tensor& pos, const Tensor& inv_freq);
void attention(const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p);
void elementwise(const Tensor& out, const Tensor& a, const Tensor& b);
void kv_store(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v, const Tensor& slots);
void paged_attention(const Tensor& out, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const Tensor& block_tables, const Tensor& row_seq, const Tensor& row_pos,
                     const PagedAttentionParams& p);
}  // namespace opcheck
}  // namespace motif
