// paged.cpp — the CPU ops over the paged KV cache: kv_store and paged_attention (ref and fast).
//
// Cache layout, per layer: [n_blocks, BS, Hkv, D] f32. Key/value j of a sequence sits in block
// block_tables[s, j / BS] at offset j % BS. The reference computes softmax in two passes like
// ref::attention_forward; the fast path uses one pass with a running max (online softmax) and
// processes the query heads that share a KV head together so each key is loaded once.
#include <cmath>
#include <vector>

#include "../../core/status.h"
#include "ops-cpu.h"
#include "simd.h"

namespace motif {

namespace opcheck {

void kv_store(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v, const Tensor& slots) {
  MOTIF_CHECK(k_cache.type == DType::F32 && v_cache.type == DType::F32 && k.type == DType::F32 && v.type == DType::F32,
              InvalidArgument, "kv_store: caches and k/v must be F32");
  MOTIF_CHECK(k_cache.ndim == 4 && v_cache.ndim == 4 && k.ndim == 3 && v.ndim == 3, InvalidArgument,
              "kv_store: caches must be [blocks,BS,Hkv,D] and k/v [T,Hkv,D]");
  MOTIF_CHECK(k_cache.shape[2] == k.shape[1] && k_cache.shape[3] == k.shape[2] && v.numel() == k.numel() &&
                  v_cache.numel() == k_cache.numel(),
              InvalidArgument, "kv_store: cache " + k_cache.shape_str() + " does not fit k " + k.shape_str());
  MOTIF_CHECK(slots.type == DType::I32 && slots.numel() == k.shape[0], InvalidArgument,
              "kv_store: slots must be I32 [T]");
}

void paged_attention(const Tensor& out, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const Tensor& block_tables, const Tensor& row_seq, const Tensor& row_pos,
                     const PagedAttentionParams& p) {
  MOTIF_CHECK(
      out.type == DType::F32 && q.type == DType::F32 && k_cache.type == DType::F32 && v_cache.type == DType::F32,
      InvalidArgument, "paged_attention: out, q and caches must be F32");
  MOTIF_CHECK(p.n_heads > 0 && p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0 && p.head_dim > 0 && p.block_size > 0,
              InvalidArgument, "paged_attention: bad head counts or block size");
  MOTIF_CHECK(q.ndim == 3 && q.shape[1] == p.n_heads && q.shape[2] == p.head_dim && out.numel() == q.numel(),
              InvalidArgument, "paged_attention: q must be [T,H,D] and out [T,H*D], got " + q.shape_str());
  MOTIF_CHECK(k_cache.ndim == 4 && k_cache.shape[1] == p.block_size && k_cache.shape[2] == p.n_kv_heads &&
                  k_cache.shape[3] == p.head_dim && v_cache.numel() == k_cache.numel(),
              InvalidArgument, "paged_attention: cache must be [blocks,BS,Hkv,D], got " + k_cache.shape_str());
  MOTIF_CHECK(block_tables.type == DType::I32 && block_tables.ndim == 2, InvalidArgument,
              "paged_attention: block_tables must be I32 [n_seqs, max_blocks]");
  MOTIF_CHECK(row_seq.type == DType::I32 && row_pos.type == DType::I32 && row_seq.numel() == q.shape[0] &&
                  row_pos.numel() == q.shape[0],
              InvalidArgument, "paged_attention: row_seq and row_pos must be I32 [T]");
}

}  // namespace opcheck

namespace {

// Where key j of block-table row s lives, as an index of a [*, Hkv, D] row of the cache.
inline int64_t cache_row(const Tensor& block_tables, int64_t s, int64_t j, int64_t bs) {
  const int32_t* table = block_tables.as<int32_t>() + s * block_tables.shape[1];
  return int64_t(table[j / bs]) * bs + j % bs;
}

void check_row(const Tensor& block_tables, const Tensor& k_cache, int64_t s, int64_t pos, int64_t bs) {
  MOTIF_CHECK(s >= 0 && s < block_tables.shape[0], InvalidArgument, "paged_attention: row_seq out of range");
  MOTIF_CHECK(pos >= 0 && (pos / bs) < block_tables.shape[1], InvalidArgument, "paged_attention: row_pos out of range");
  const int32_t* table = block_tables.as<int32_t>() + s * block_tables.shape[1];
  for (int64_t b = 0; b <= pos / bs; b++)
    MOTIF_CHECK(table[b] >= 0 && table[b] < k_cache.shape[0], InvalidArgument,
                "paged_attention: block id out of range");
}

}  // namespace

namespace ref {

void kv_store_forward(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                      const Tensor& slots) {
  opcheck::kv_store(k_cache, v_cache, k, v, slots);
  const int64_t T = k.shape[0], row = k.shape[1] * k.shape[2], n_slots = k_cache.shape[0] * k_cache.shape[1];
  for (int64_t t = 0; t < T; t++) {
    const int64_t slot = slots.as<int32_t>()[t];
    MOTIF_CHECK(slot >= 0 && slot < n_slots, InvalidArgument, "kv_store: slot out of range");
    for (int64_t i = 0; i < row; i++) {
      k_cache.as<float>()[slot * row + i] = k.as<float>()[t * row + i];
      v_cache.as<float>()[slot * row + i] = v.as<float>()[t * row + i];
    }
  }
}

void paged_attention_forward(const Tensor& out, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                             const Tensor& block_tables, const Tensor& row_seq, const Tensor& row_pos,
                             const PagedAttentionParams& p) {
  opcheck::paged_attention(out, q, k_cache, v_cache, block_tables, row_seq, row_pos, p);
  const int64_t T = q.shape[0], H = p.n_heads, Hkv = p.n_kv_heads, D = p.head_dim, group = H / Hkv;
  const int64_t bs = p.block_size;
  std::vector<float> scores;
  for (int64_t t = 0; t < T; t++) {
    const int64_t s = row_seq.as<int32_t>()[t], pos = row_pos.as<int32_t>()[t];
    check_row(block_tables, k_cache, s, pos, bs);
    for (int64_t h = 0; h < H; h++) {
      const int64_t hk = h / group;
      const float* qr = q.as<float>() + (t * H + h) * D;
      scores.assign(size_t(pos + 1), 0.0f);
      float mx = -INFINITY;
      for (int64_t j = 0; j <= pos; j++) {
        const float* kr = k_cache.as<float>() + (cache_row(block_tables, s, j, bs) * Hkv + hk) * D;
        float dot = 0.0f;
        for (int64_t d = 0; d < D; d++) dot += qr[d] * kr[d];
        scores[size_t(j)] = dot * p.scale;
        mx = std::max(mx, scores[size_t(j)]);
      }
      float sum = 0.0f;
      for (auto& sc : scores) {
        sc = std::exp(sc - mx);
        sum += sc;
      }
      float* o = out.as<float>() + (t * H + h) * D;
      for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
      for (int64_t j = 0; j <= pos; j++) {
        const float wgt = scores[size_t(j)] / sum;
        const float* vr = v_cache.as<float>() + (cache_row(block_tables, s, j, bs) * Hkv + hk) * D;
        for (int64_t d = 0; d < D; d++) o[d] += wgt * vr[d];
      }
    }
  }
}

}  // namespace ref

namespace fast {

void kv_store_forward(ThreadPool& pool, const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                      const Tensor& slots) {
  (void)pool;  // a copy of a few KB per token: threads would cost more than they save
  ref::kv_store_forward(k_cache, v_cache, k, v, slots);
}

void paged_attention_forward(ThreadPool& pool, const Tensor& out, const Tensor& q, const Tensor& k_cache,
                             const Tensor& v_cache, const Tensor& block_tables, const Tensor& row_seq,
                             const Tensor& row_pos, const PagedAttentionParams& p) {
  opcheck::paged_attention(out, q, k_cache, v_cache, block_tables, row_seq, row_pos, p);
  const int64_t T = q.shape[0], H = p.n_heads, Hkv = p.n_kv_heads, D = p.head_dim, group = H / Hkv;
  const int64_t bs = p.block_size;
  for (int64_t t = 0; t < T; t++)
    check_row(block_tables, k_cache, row_seq.as<int32_t>()[t], row_pos.as<int32_t>()[t], bs);
  // One task per (row, kv head): the `group` query heads sharing that kv head walk the keys together.
  pool.parallel_for(T * Hkv, [&](int64_t task, int) {
    const int64_t t = task / Hkv, hk = task % Hkv;
    const int64_t s = row_seq.as<int32_t>()[t], pos = row_pos.as<int32_t>()[t];
    thread_local std::vector<float> buf;
    buf.resize(size_t(group * (D + 2)));
    float* acc = buf.data();      // [group, D]
    float* mx = acc + group * D;  // [group]
    float* sum = mx + group;      // [group]
    for (int64_t g = 0; g < group; g++) {
      mx[g] = -INFINITY;
      sum[g] = 0.0f;
      for (int64_t d = 0; d < D; d++) acc[g * D + d] = 0.0f;
    }
    const float* q0 = q.as<float>() + (t * H + hk * group) * D;
    for (int64_t j = 0; j <= pos; j++) {
      const int64_t r = cache_row(block_tables, s, j, bs);
      const float* kr = k_cache.as<float>() + (r * Hkv + hk) * D;
      const float* vr = v_cache.as<float>() + (r * Hkv + hk) * D;
      for (int64_t g = 0; g < group; g++) {
        const float* qr = q0 + g * D;
        float dot = 0.0f;
        int64_t d = 0;
#if MOTIF_AVX2
        simd::vec a = simd::zero();
        for (; d + simd::kWidth <= D; d += simd::kWidth) a = simd::fma(simd::load(qr + d), simd::load(kr + d), a);
        dot = simd::hsum(a);
#endif
        for (; d < D; d++) dot += qr[d] * kr[d];
        const float score = dot * p.scale;
        float* ag = acc + g * D;
        if (score > mx[g]) {  // rescale what was accumulated under the old max
          const float c = std::exp(mx[g] - score);
          sum[g] *= c;
          for (int64_t e = 0; e < D; e++) ag[e] *= c;
          mx[g] = score;
        }
        const float w = std::exp(score - mx[g]);
        sum[g] += w;
        for (int64_t e = 0; e < D; e++) ag[e] += w * vr[e];
      }
    }
    for (int64_t g = 0; g < group; g++) {
      float* o = out.as<float>() + (t * H + hk * group + g) * D;
      const float inv = 1.0f / sum[g];
      for (int64_t d = 0; d < D; d++) o[d] = acc[g * D + d] * inv;
    }
  });
}

}  // namespace fast
}  // namespace motif
