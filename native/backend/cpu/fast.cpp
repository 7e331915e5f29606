// fast.cpp — the default CPU ops: threaded over the thread pool, AVX2/FMA when the build has it.
//
// Each op computes what its ref:: twin in ref.cpp computes (test-backend-ops holds them to
// it); only the order of float additions differs. The hot op is matmul_forward:
//   - few tokens (decode, up to 16): each weight row is streamed once from its mapped file,
//     widened from bf16/f16 in registers, and dotted with every token (memory-bound);
//   - many tokens (prefill): the activations are packed k-major in tiles of two vectors of
//     tokens; a block of 24 weight rows is widened once into a per-thread f32 scratch, and a
//     6-rows x 2-vectors register-tiled kernel (broadcast weight, FMA over tokens) runs every
//     tile over it (compute-bound).
#include <algorithm>
#include <cmath>
#include <vector>

#include "../../core/status.h"
#include "ops-cpu.h"
#include "simd.h"

namespace motif {
namespace fast {

namespace {

// Per-thread scratch, grown on demand and kept for the life of the thread.
float* thread_scratch(size_t n_floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < n_floats) buf.resize(n_floats);
  return buf.data();
}

// Splits [0, n) into chunks so every thread gets several (load balance), each at least `min_chunk`.
int64_t chunk_size(int64_t n, int threads, int64_t min_chunk) {
  const int64_t target = std::max<int64_t>(1, int64_t(threads) * 4);
  return std::max<int64_t>(min_chunk, (n + target - 1) / target);
}

// ---------------------------------------------------------------------------------
// matmul micro-kernel: out[t][n] (+)= dot(x[t, 0:K], w[n, 0:K]) for TT tokens x NN rows.
//
// With kPrefetch the next tile's NN rows are prefetched, one cache line per row per 64 bytes of
// this tile's progress. Reading weights straight from memory (decode), NN rows of a few KiB each
// are NN short interleaved streams that the hardware prefetcher barely picks up before they end;
// on the development machine this doubled the bandwidth a bf16 matvec gets from mapped weights.
// (Prefetching past the end of the tensor is harmless: prefetches never fault.)

// How a tile's dot products reach `out`: stored, or scaled and added (out += scale * dot).
struct TileStore {
  bool accumulate = false;
  float scale = 1.0f;
};

template <int TT, int NN, typename WT, bool kPrefetch = false>
void dot_tile(const float* x, int64_t ldx, const WT* w, DType wtype, int64_t ldw, int64_t K, float* out, int64_t ldo,
              TileStore st) {
  float res[TT][NN];
  int64_t k = 0;
#if MOTIF_AVX2
  simd::vec acc[TT][NN];
  for (int t = 0; t < TT; t++)
    for (int n = 0; n < NN; n++) acc[t][n] = simd::zero();
  for (; k + simd::kWidth <= K; k += simd::kWidth) {
    if constexpr (kPrefetch) {
      constexpr int64_t kLine = 64 / int64_t(sizeof(WT));  // elements per cache line
      if (k % kLine == 0)
        for (int n = 0; n < NN; n++) _mm_prefetch(reinterpret_cast<const char*>(w + (n + NN) * ldw + k), _MM_HINT_T0);
    }
    simd::vec wv[NN];
    for (int n = 0; n < NN; n++) {
      if constexpr (sizeof(WT) == 4)
        wv[n] = simd::load(reinterpret_cast<const float*>(w) + n * ldw + k);
      else
        wv[n] = simd::load(reinterpret_cast<const uint16_t*>(w) + n * ldw + k, wtype);
    }
    for (int t = 0; t < TT; t++) {
      const simd::vec xv = simd::load(x + t * ldx + k);
      for (int n = 0; n < NN; n++) acc[t][n] = simd::fma(xv, wv[n], acc[t][n]);
    }
  }
  for (int t = 0; t < TT; t++)
    for (int n = 0; n < NN; n++) res[t][n] = simd::hsum(acc[t][n]);
#else
  for (int t = 0; t < TT; t++)
    for (int n = 0; n < NN; n++) res[t][n] = 0.0f;
#endif
  for (; k < K; k++) {
    for (int n = 0; n < NN; n++) {
      const float wk =
          sizeof(WT) == 4 ? reinterpret_cast<const float*>(w)[n * ldw + k] : load_as_f32(wtype, w, n * ldw + k);
      for (int t = 0; t < TT; t++) res[t][n] += x[t * ldx + k] * wk;
    }
  }
  for (int t = 0; t < TT; t++)
    for (int n = 0; n < NN; n++) {
      float& o = out[t * ldo + n];
      o = st.accumulate ? o + st.scale * res[t][n] : res[t][n];
    }
}

// Runs the tiles over a [tn x nn] block: tokens in tiles of up to 4, rows in tiles sized so
// accumulators + operands fit the vector registers. (8-token tiles with AVX-512's 32 registers
// measured no faster for decode batches of 8.)
template <typename WT, bool kPrefetch = false>
void dot_block(const float* x, int64_t ldx, int64_t tn, const WT* w, DType wtype, int64_t ldw, int64_t nn, int64_t K,
               float* out, int64_t ldo, TileStore st = {}) {
  int64_t t = 0;
  for (; t + 4 <= tn; t += 4) {
    int64_t n = 0;
    for (; n + 3 <= nn; n += 3)
      dot_tile<4, 3, WT, kPrefetch>(x + t * ldx, ldx, w + n * ldw, wtype, ldw, K, out + t * ldo + n, ldo, st);
    for (; n < nn; n++)
      dot_tile<4, 1, WT, kPrefetch>(x + t * ldx, ldx, w + n * ldw, wtype, ldw, K, out + t * ldo + n, ldo, st);
  }
  const int64_t rest = tn - t;
  if (rest == 0) return;
  const float* xr = x + t * ldx;
  float* orow = out + t * ldo;
  int64_t n = 0;
  switch (rest) {
    case 3:
      for (; n + 3 <= nn; n += 3) dot_tile<3, 3, WT, kPrefetch>(xr, ldx, w + n * ldw, wtype, ldw, K, orow + n, ldo, st);
      for (; n < nn; n++) dot_tile<3, 1, WT, kPrefetch>(xr, ldx, w + n * ldw, wtype, ldw, K, orow + n, ldo, st);
      break;
    case 2:
      for (; n + 4 <= nn; n += 4) dot_tile<2, 4, WT, kPrefetch>(xr, ldx, w + n * ldw, wtype, ldw, K, orow + n, ldo, st);
      for (; n < nn; n++) dot_tile<2, 1, WT, kPrefetch>(xr, ldx, w + n * ldw, wtype, ldw, K, orow + n, ldo, st);
      break;
    default:
      for (; n + 6 <= nn; n += 6) dot_tile<1, 6, WT, kPrefetch>(xr, ldx, w + n * ldw, wtype, ldw, K, orow + n, ldo, st);
      for (; n < nn; n++) dot_tile<1, 1, WT, kPrefetch>(xr, ldx, w + n * ldw, wtype, ldw, K, orow + n, ldo, st);
      break;
  }
}

void add_bias(float* out, int64_t ldo, int64_t tn, int64_t n0, int64_t nn, const Tensor& bias) {
  if (!bias.data) return;
  for (int64_t n = 0; n < nn; n++) {
    const float b = load_as_f32(bias.type, bias.data, n0 + n);
    for (int64_t t = 0; t < tn; t++) out[t * ldo + n] += b;
  }
}

#if MOTIF_AVX2
// ---------------------------------------------------------------------------------
// Prefill GEMM on packed activations. x is packed once per call into tiles of kPackTokens tokens,
// k-major ([tile][k][kPackTokens], zero past the last token), so one k step of a tile is two
// vector loads. The micro-kernel holds NN weight rows x 2 token vectors of accumulators and, per
// k, broadcasts NN weights and issues 2·NN FMAs: no horizontal sums, 2 + NN loads per 2·NN FMAs.

constexpr int64_t kPackTokens = 2 * simd::kWidth;
constexpr int kMicroRows = 6;

template <int NN>
void packed_tile(const float* xt, const float* w, int64_t ldw, int64_t K, float* out, int64_t ldo, int64_t tn,
                 TileStore st) {
  constexpr int64_t W = simd::kWidth;
  simd::vec acc[NN][2];
  for (int n = 0; n < NN; n++) acc[n][0] = acc[n][1] = simd::zero();
  for (int64_t k = 0; k < K; k++) {
    const simd::vec x0 = simd::load(xt + k * kPackTokens), x1 = simd::load(xt + k * kPackTokens + W);
    for (int n = 0; n < NN; n++) {
      const simd::vec wv = simd::set1(w[n * ldw + k]);
      acc[n][0] = simd::fma(wv, x0, acc[n][0]);
      acc[n][1] = simd::fma(wv, x1, acc[n][1]);
    }
  }
  alignas(64) float lanes[kPackTokens];
  for (int n = 0; n < NN; n++) {
    simd::store(lanes, acc[n][0]);
    simd::store(lanes + W, acc[n][1]);
    for (int64_t j = 0; j < tn; j++) {
      float& o = out[j * ldo + n];
      o = st.accumulate ? o + st.scale * lanes[j] : lanes[j];
    }
  }
}

// Rows [0, nn) of a weight block (f32, row stride ldw) against one packed token tile.
void packed_rows(const float* xt, const float* w, int64_t ldw, int64_t nn, int64_t K, float* out, int64_t ldo,
                 int64_t tn, TileStore st) {
  int64_t n = 0;
  for (; n + kMicroRows <= nn; n += kMicroRows) packed_tile<kMicroRows>(xt, w + n * ldw, ldw, K, out + n, ldo, tn, st);
  switch (nn - n) {
    case 5: packed_tile<5>(xt, w + n * ldw, ldw, K, out + n, ldo, tn, st); break;
    case 4: packed_tile<4>(xt, w + n * ldw, ldw, K, out + n, ldo, tn, st); break;
    case 3: packed_tile<3>(xt, w + n * ldw, ldw, K, out + n, ldo, tn, st); break;
    case 2: packed_tile<2>(xt, w + n * ldw, ldw, K, out + n, ldo, tn, st); break;
    case 1: packed_tile<1>(xt, w + n * ldw, ldw, K, out + n, ldo, tn, st); break;
    default: break;
  }
}

// out (+)= x · wᵀ for many tokens: packs x, then one task per block of rows (widened to f32 once
// when 16-bit) runs every token tile over it.
void matmul_packed(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                   TileStore st) {
  const int64_t T = x.rows(), K = x.cols(), N = w.shape[0];
  const int64_t n_tiles = (T + kPackTokens - 1) / kPackTokens;
  thread_local std::vector<float> packed;  // reused across calls: no page faults once warm
  if (packed.size() < size_t(n_tiles * K * kPackTokens)) packed.resize(size_t(n_tiles * K * kPackTokens));
  float* xpk = packed.data();
  const float* xs = x.as<float>();
  pool.parallel_for(n_tiles, [&](int64_t tile, int) {
    float* dst = xpk + tile * K * kPackTokens;
    for (int64_t j = 0; j < kPackTokens; j++) {
      const int64_t t = tile * kPackTokens + j;
      if (t < T)
        for (int64_t k = 0; k < K; k++) dst[k * kPackTokens + j] = xs[t * K + k];
      else
        for (int64_t k = 0; k < K; k++) dst[k * kPackTokens + j] = 0.0f;
    }
  });
  constexpr int64_t NB = 4 * kMicroRows;
  float* op = out.as<float>();
  pool.parallel_for((N + NB - 1) / NB, [&](int64_t task, int) {
    const int64_t n0 = task * NB, nn = std::min(NB, N - n0);
    const float* wf;
    if (w.type == DType::F32) {
      wf = w.as<float>() + n0 * K;
    } else {
      float* scratch = thread_scratch(size_t(NB * K));
      simd::to_f32(w.type, w.as<uint16_t>() + n0 * K, scratch, nn * K);
      wf = scratch;
    }
    for (int64_t tile = 0; tile < n_tiles; tile++) {
      const int64_t t0 = tile * kPackTokens, tn = std::min(kPackTokens, T - t0);
      float* o = op + t0 * N + n0;
      packed_rows(xpk + tile * K * kPackTokens, wf, K, nn, K, o, N, tn, st);
      add_bias(o, N, tn, n0, nn, bias);
    }
  });
}
#endif

// Up to this many tokens, 16-bit weights are streamed from memory (decode, decode batches);
// above it they are widened once into f32 blocks (prefill).
constexpr int64_t kStreamTokens = 16;
// Rows per group in the streaming path: a multiple of every row-tile size of dot_block (3, 4, 6).
constexpr int64_t kRowGroup = 12;

// out = x · wᵀ (+ bias), or out += st.scale · x · wᵀ: the driver behind matmul_forward and
// matmul_accumulate. Shapes are checked by the callers.
void matmul_driver(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                   TileStore st) {
  const int64_t T = x.rows(), K = x.cols(), N = w.shape[0];
  const float* xp = x.as<float>();
  float* op = out.as<float>();

#if MOTIF_AVX2
  if (T > kStreamTokens) {
    matmul_packed(pool, out, x, w, bias, st);
    return;
  }
#endif
  if (T <= kStreamTokens || w.type == DType::F32) {
    // Stream weight rows straight from memory, a group of kRowGroup rows at a time: each group is
    // read from memory once and reused from cache by every token tile (decode batches).
    const int64_t TB = w.type == DType::F32 ? 64 : T;
    const int64_t nb = chunk_size(N, pool.n_threads(), 16);
    const int64_t n_nblocks = (N + nb - 1) / nb, n_tblocks = (T + TB - 1) / TB;
    pool.parallel_for(n_nblocks * n_tblocks, [&](int64_t task, int) {
      const int64_t n0 = (task % n_nblocks) * nb, t0 = (task / n_nblocks) * TB;
      const int64_t nn = std::min(nb, N - n0), tn = std::min(TB, T - t0);
      float* o = op + t0 * N + n0;
      if (w.type == DType::F32)
        dot_block(xp + t0 * K, K, tn, w.as<float>() + n0 * K, w.type, K, nn, K, o, N, st);
      else
        for (int64_t g = 0; g < nn; g += kRowGroup)
          dot_block<uint16_t, true>(xp + t0 * K, K, tn, w.as<uint16_t>() + (n0 + g) * K, w.type, K,
                                    std::min(kRowGroup, nn - g), K, o + g, N, st);
      add_bias(o, N, tn, n0, nn, bias);
    });
    return;
  }

  // Prefill: widen a block of NB rows once, reuse it over every token, TB tokens at a time.
  constexpr int64_t NB = 16, TB = 64;
  pool.parallel_for((N + NB - 1) / NB, [&](int64_t task, int) {
    const int64_t n0 = task * NB, nn = std::min(NB, N - n0);
    float* wf = thread_scratch(size_t(NB * K));
    simd::to_f32(w.type, w.as<uint16_t>() + n0 * K, wf, nn * K);
    for (int64_t t0 = 0; t0 < T; t0 += TB) {
      const int64_t tn = std::min(TB, T - t0);
      float* o = op + t0 * N + n0;
      dot_block(xp + t0 * K, K, tn, wf, DType::F32, K, nn, K, o, N, st);
      add_bias(o, N, tn, n0, nn, bias);
    }
  });
}

}  // namespace

void matmul_forward(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias) {
  opcheck::matmul(out, x, w, bias);
  matmul_driver(pool, out, x, w, bias, TileStore{});
}

void matmul_accumulate(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, float scale) {
  opcheck::matmul(out, x, w, Tensor{});
  matmul_driver(pool, out, x, w, Tensor{}, TileStore{true, scale});
}

// ---------------------------------------------------------------------------------
// the other ops: threaded versions of the reference loops

void embedding_forward(ThreadPool& pool, const Tensor& out, const Tensor& table, const Tensor& ids) {
  opcheck::embedding(out, table, ids);
  const int64_t T = ids.numel(), C = table.cols(), V = table.rows();
  for (int64_t t = 0; t < T; t++) {
    const int32_t id = ids.as<int32_t>()[t];
    MOTIF_CHECK(id >= 0 && id < V, InvalidArgument,
                "token id " + std::to_string(id) + " at position " + std::to_string(t) + " is outside [0, " +
                    std::to_string(V) + ")");
  }
  const size_t esize = dtype_size(table.type);
  pool.parallel_for(T, [&](int64_t t, int) {
    const int32_t id = ids.as<int32_t>()[t];
    simd::to_f32(table.type, static_cast<const char*>(table.data) + size_t(id) * size_t(C) * esize,
                 out.as<float>() + t * C, C);
  });
}

void rmsnorm_forward(ThreadPool& pool, const Tensor& out, const Tensor& x, const Tensor& w, float eps) {
  opcheck::rmsnorm(out, x, w);
  const int64_t T = x.rows(), C = x.cols();
  pool.parallel_for(T, [&](int64_t t, int) {
    const float* xr = x.as<float>() + t * C;
    float* o = out.as<float>() + t * C;
    float ss = 0.0f;
    int64_t c = 0;
#if MOTIF_AVX2
    simd::vec acc = simd::zero();
    for (; c + simd::kWidth <= C; c += simd::kWidth) {
      const simd::vec v = simd::load(xr + c);
      acc = simd::fma(v, v, acc);
    }
    ss = simd::hsum(acc);
#endif
    for (; c < C; c++) ss += xr[c] * xr[c];
    const float inv = 1.0f / std::sqrt(ss / float(C) + eps);
    for (c = 0; c < C; c++) o[c] = xr[c] * inv * load_as_f32(w.type, w.data, c);
  });
}

void rope_forward(ThreadPool& pool, const Tensor& x, const Tensor& pos, const Tensor& inv_freq) {
  opcheck::rope(x, pos, inv_freq);
  const int64_t T = x.shape[0], H = x.shape[1], D = x.shape[2], half = D / 2;
  pool.parallel_for(T, [&](int64_t t, int) {
    float* cs = thread_scratch(size_t(D));  // cos in [0, half), sin in [half, D)
    const float p = float(pos.as<int32_t>()[t]);
    for (int64_t i = 0; i < half; i++) {
      const float angle = p * inv_freq.as<float>()[i];
      cs[i] = std::cos(angle);
      cs[half + i] = std::sin(angle);
    }
    for (int64_t h = 0; h < H; h++) {
      float* row = x.as<float>() + (t * H + h) * D;
      for (int64_t i = 0; i < half; i++) {
        const float x1 = row[i], x2 = row[i + half];
        row[i] = x1 * cs[i] - x2 * cs[half + i];
        row[i + half] = x2 * cs[i] + x1 * cs[half + i];
      }
    }
  });
}

void attention_forward(ThreadPool& pool, const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionParams& p) {
  opcheck::attention(out, q, k, v, p);
  const int64_t H = p.n_heads, Hkv = p.n_kv_heads, D = p.head_dim, group = H / Hkv;
  const int64_t T = p.seq_starts[p.n_seqs];
  // One task per (token, head): tokens of every sequence are independent queries.
  pool.parallel_for(T * H, [&](int64_t task, int) {
    const int64_t t = task / H, h = task % H, hk = h / group;
    int s = 0;
    while (p.seq_starts[s + 1] <= t) s++;
    const int64_t t0 = p.seq_starts[s], n_keys = t - t0 + 1;
    float* scores = thread_scratch(size_t(n_keys + D));
    float* acc = scores + n_keys;
    const float* qr = q.as<float>() + (t * H + h) * D;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n_keys; j++) {
      const float* kr = k.as<float>() + ((t0 + j) * Hkv + hk) * D;
      float dot = 0.0f;
      int64_t d = 0;
#if MOTIF_AVX2
      simd::vec a = simd::zero();
      for (; d + simd::kWidth <= D; d += simd::kWidth) a = simd::fma(simd::load(qr + d), simd::load(kr + d), a);
      dot = simd::hsum(a);
#endif
      for (; d < D; d++) dot += qr[d] * kr[d];
      scores[j] = dot * p.scale;
      mx = std::max(mx, scores[j]);
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < n_keys; j++) {
      scores[j] = std::exp(scores[j] - mx);
      sum += scores[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t d = 0; d < D; d++) acc[d] = 0.0f;
    for (int64_t j = 0; j < n_keys; j++) {
      const float wgt = scores[j] * inv;
      const float* vr = v.as<float>() + ((t0 + j) * Hkv + hk) * D;
      for (int64_t d = 0; d < D; d++) acc[d] += wgt * vr[d];
    }
    float* o = out.as<float>() + (t * H + h) * D;
    for (int64_t d = 0; d < D; d++) o[d] = acc[d];
  });
}

void swiglu_forward(ThreadPool& pool, const Tensor& out, const Tensor& gate, const Tensor& up) {
  opcheck::elementwise(out, gate, up);
  const int64_t n = out.numel(), chunk = chunk_size(n, pool.n_threads(), 4096);
  pool.parallel_for((n + chunk - 1) / chunk, [&](int64_t c, int) {
    const int64_t i0 = c * chunk, i1 = std::min(n, i0 + chunk);
    const float* g = gate.as<float>();
    const float* u = up.as<float>();
    float* o = out.as<float>();
    for (int64_t i = i0; i < i1; i++) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  });
}

void add_forward(ThreadPool& pool, const Tensor& out, const Tensor& a, const Tensor& b) {
  opcheck::elementwise(out, a, b);
  const int64_t n = out.numel(), chunk = chunk_size(n, pool.n_threads(), 16384);
  pool.parallel_for((n + chunk - 1) / chunk, [&](int64_t c, int) {
    const int64_t i0 = c * chunk, i1 = std::min(n, i0 + chunk);
    for (int64_t i = i0; i < i1; i++) out.as<float>()[i] = a.as<float>()[i] + b.as<float>()[i];
  });
}

}  // namespace fast
}  // namespace motif
