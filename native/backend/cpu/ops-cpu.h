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
}  // namespace ref

namespace fast {
void embedding_forward(ThreadPool& pool, const Tensor& out, const Tensor& table, const Tensor& ids);
void rmsnorm_forward(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, float eps);
void matmul_forward(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias);
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
