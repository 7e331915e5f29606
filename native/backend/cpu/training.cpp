// training.cpp — the CPU training ops (ref and fast): LoRA forward, the backward ops of every
// layer, the chunked LM-head log-softmax pieces of the fused GRPO loss, and AdamW.
//
// ref:: are plain loops (the spec: test-backend-ops checks each backward against central finite
// differences of its forward). fast:: run the same arithmetic spread over the thread pool; the
// heavy ones (matmul_backward_input for the LM head and projections) stream each weight row once.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../../core/status.h"
#include "ops-cpu.h"
#include "simd.h"

namespace motif {

namespace {

void require_f32(const Tensor& t, const char* what) {
  MOTIF_CHECK(t.type == DType::F32, InvalidArgument, std::string(what) + " must be F32");
}

void check_mm_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w) {
  require_f32(dx, "matmul_backward_input dx");
  require_f32(dy, "matmul_backward_input dy");
  MOTIF_CHECK(
      w.ndim == 2 && dy.cols() == w.shape[0] && dx.cols() == w.shape[1] && dx.rows() == dy.rows(), InvalidArgument,
      "matmul_backward_input: dy " + dy.shape_str() + " @ w " + w.shape_str() + " does not fit dx " + dx.shape_str());
}

void check_mm_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x) {
  require_f32(dw, "matmul_backward_weight dw");
  require_f32(dy, "matmul_backward_weight dy");
  require_f32(x, "matmul_backward_weight x");
  MOTIF_CHECK(dw.ndim == 2 && dy.cols() == dw.shape[0] && x.cols() == dw.shape[1] && x.rows() == dy.rows(),
              InvalidArgument,
              "matmul_backward_weight: dy^T " + dy.shape_str() + " @ x " + x.shape_str() + " does not fit dw " +
                  dw.shape_str());
}

void check_lora(const Tensor& out, const Tensor& tmp, const Tensor& x, const Tensor& a, const Tensor& b) {
  require_f32(out, "lora out");
  require_f32(tmp, "lora tmp");
  require_f32(x, "lora x");
  require_f32(a, "lora a");
  require_f32(b, "lora b");
  MOTIF_CHECK(
      a.ndim == 2 && b.ndim == 2 && a.shape[1] == x.cols() && b.shape[1] == a.shape[0] && out.cols() == b.shape[0] &&
          out.rows() == x.rows() && tmp.rows() == x.rows() && tmp.cols() == a.shape[0],
      InvalidArgument,
      "lora: x " + x.shape_str() + ", a " + a.shape_str() + ", b " + b.shape_str() + ", out " + out.shape_str());
}

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// rsqrt(mean(x^2) + eps) of one row of C values: rmsnorm's scale of that row.
inline float rms_inverse(const float* x, int64_t C, float eps) {
  float ss = 0.0f;
  for (int64_t c = 0; c < C; c++) ss += x[c] * x[c];
  return 1.0f / std::sqrt(ss / float(C) + eps);
}

}  // namespace

namespace ref {

void lora_forward(const Tensor& out, const Tensor& tmp, const Tensor& x, const Tensor& a, const Tensor& b,
                  float scale) {
  check_lora(out, tmp, x, a, b);
  ref::matmul_forward(tmp, x, a, Tensor{});
  const int64_t T = x.rows(), N = b.shape[0], r = a.shape[0];
  for (int64_t t = 0; t < T; t++)
    for (int64_t n = 0; n < N; n++) {
      float acc = 0.0f;
      for (int64_t j = 0; j < r; j++) acc += tmp.as<float>()[t * r + j] * b.as<float>()[n * r + j];
      out.as<float>()[t * N + n] += scale * acc;
    }
}

void matmul_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, bool accumulate) {
  check_mm_backward_input(dx, dy, w);
  const int64_t T = dy.rows(), N = w.shape[0], K = w.shape[1];
  for (int64_t t = 0; t < T; t++)
    for (int64_t k = 0; k < K; k++) {
      float acc = 0.0f;
      for (int64_t n = 0; n < N; n++) acc += dy.as<float>()[t * N + n] * load_as_f32(w.type, w.data, n * K + k);
      float& o = dx.as<float>()[t * K + k];
      o = accumulate ? o + acc : acc;
    }
}

void matmul_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, float scale) {
  check_mm_backward_weight(dw, dy, x);
  const int64_t T = dy.rows(), N = dw.shape[0], K = dw.shape[1];
  for (int64_t n = 0; n < N; n++)
    for (int64_t k = 0; k < K; k++) {
      float acc = 0.0f;
      for (int64_t t = 0; t < T; t++) acc += dy.as<float>()[t * N + n] * x.as<float>()[t * K + k];
      dw.as<float>()[n * K + k] += scale * acc;
    }
}

void rmsnorm_backward(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& w, float eps) {
  opcheck::rmsnorm(dy, x, w);
  require_f32(dx, "rmsnorm_backward dx");
  const int64_t T = x.rows(), C = x.cols();
  for (int64_t t = 0; t < T; t++) {
    const float* xr = x.as<float>() + t * C;
    const float* g = dy.as<float>() + t * C;
    const float r = rms_inverse(xr, C, eps);
    float dot = 0.0f;  // sum_j dy_j w_j x_j
    for (int64_t c = 0; c < C; c++) dot += g[c] * load_as_f32(w.type, w.data, c) * xr[c];
    const float k = r * r * r / float(C) * dot;
    for (int64_t c = 0; c < C; c++) dx.as<float>()[t * C + c] += r * load_as_f32(w.type, w.data, c) * g[c] - xr[c] * k;
  }
}

void rmsnorm_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, float eps) {
  require_f32(dw, "rmsnorm_backward_weight dw");
  require_f32(dy, "rmsnorm_backward_weight dy");
  require_f32(x, "rmsnorm_backward_weight x");
  const int64_t T = x.rows(), C = x.cols();
  MOTIF_CHECK(dy.rows() == T && dy.cols() == C && dw.numel() == C, InvalidArgument,
              "rmsnorm_backward_weight: dy " + dy.shape_str() + ", x " + x.shape_str() + ", dw " + dw.shape_str());
  // Rows outer, channels inner, accumulated in double per channel: the sums run over up to T rows.
  std::vector<double> acc(static_cast<size_t>(C), 0.0);
  for (int64_t t = 0; t < T; t++) {
    const float* xr = x.as<float>() + t * C;
    const float* g = dy.as<float>() + t * C;
    const float r = rms_inverse(xr, C, eps);
    for (int64_t c = 0; c < C; c++) acc[size_t(c)] += double(g[c] * xr[c] * r);
  }
  for (int64_t c = 0; c < C; c++) dw.as<float>()[c] += float(acc[size_t(c)]);
}

void bias_backward(const Tensor& db, const Tensor& dy) {
  require_f32(db, "bias_backward db");
  require_f32(dy, "bias_backward dy");
  const int64_t T = dy.rows(), N = dy.cols();
  MOTIF_CHECK(db.numel() == N, InvalidArgument, "bias_backward: db " + db.shape_str() + " vs dy " + dy.shape_str());
  std::vector<double> acc(static_cast<size_t>(N), 0.0);
  for (int64_t t = 0; t < T; t++)
    for (int64_t n = 0; n < N; n++) acc[size_t(n)] += double(dy.as<float>()[t * N + n]);
  for (int64_t n = 0; n < N; n++) db.as<float>()[n] += float(acc[size_t(n)]);
}

void embedding_backward(const Tensor& dtable, const Tensor& dx, const Tensor& ids) {
  require_f32(dtable, "embedding_backward dtable");
  require_f32(dx, "embedding_backward dx");
  MOTIF_CHECK(ids.type == DType::I32, InvalidArgument, "embedding_backward ids must be I32");
  const int64_t T = dx.rows(), C = dx.cols(), V = dtable.rows();
  MOTIF_CHECK(
      ids.numel() == T && dtable.cols() == C, InvalidArgument,
      "embedding_backward: dtable " + dtable.shape_str() + ", dx " + dx.shape_str() + ", ids " + ids.shape_str());
  for (int64_t t = 0; t < T; t++) {
    const int32_t id = ids.as<int32_t>()[t];
    MOTIF_CHECK(id >= 0 && id < V, InvalidArgument,
                "embedding_backward: id " + std::to_string(id) + " outside [0, " + std::to_string(V) + ")");
    float* row = dtable.as<float>() + int64_t(id) * C;
    const float* g = dx.as<float>() + t * C;
    for (int64_t c = 0; c < C; c++) row[c] += g[c];
  }
}

void rope_backward(const Tensor& dx, const Tensor& pos, const Tensor& inv_freq) {
  opcheck::rope(dx, pos, inv_freq);
  const int64_t T = dx.shape[0], H = dx.shape[1], D = dx.shape[2], half = D / 2;
  for (int64_t t = 0; t < T; t++) {
    const float p = float(pos.as<int32_t>()[t]);
    for (int64_t h = 0; h < H; h++) {
      float* row = dx.as<float>() + (t * H + h) * D;
      for (int64_t i = 0; i < half; i++) {
        const float angle = p * inv_freq.as<float>()[i];
        const float c = std::cos(angle), s = std::sin(angle);
        const float d1 = row[i], d2 = row[i + half];
        row[i] = d1 * c + d2 * s;
        row[i + half] = d2 * c - d1 * s;
      }
    }
  }
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const AttentionParams& p) {
  opcheck::attention(dout, q, k, v, p);
  MOTIF_CHECK(dq.numel() == q.numel() && dk.numel() == k.numel() && dv.numel() == v.numel(), InvalidArgument,
              "attention_backward: gradient sizes must match q, k, v");
  const int64_t H = p.n_heads, Hkv = p.n_kv_heads, D = p.head_dim, group = H / Hkv;
  for (int64_t i = 0; i < dq.numel(); i++) dq.as<float>()[i] = 0.0f;
  for (int64_t i = 0; i < dk.numel(); i++) dk.as<float>()[i] = 0.0f;
  for (int64_t i = 0; i < dv.numel(); i++) dv.as<float>()[i] = 0.0f;
  std::vector<float> prob, dp;
  for (int s = 0; s < p.n_seqs; s++) {
    const int64_t t0 = p.seq_starts[s], t1 = p.seq_starts[s + 1];
    for (int64_t t = t0; t < t1; t++) {
      for (int64_t h = 0; h < H; h++) {
        const int64_t hk = h / group, n = t - t0 + 1;
        const float* qr = q.as<float>() + (t * H + h) * D;
        const float* g = dout.as<float>() + (t * H + h) * D;
        prob.assign(size_t(n), 0.0f);
        dp.assign(size_t(n), 0.0f);
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
          const float* kr = k.as<float>() + ((t0 + j) * Hkv + hk) * D;
          float dot = 0.0f;
          for (int64_t d = 0; d < D; d++) dot += qr[d] * kr[d];
          prob[size_t(j)] = dot * p.scale;
          mx = std::max(mx, prob[size_t(j)]);
        }
        float sum = 0.0f;
        for (auto& x : prob) {
          x = std::exp(x - mx);
          sum += x;
        }
        float pdp = 0.0f;
        for (int64_t j = 0; j < n; j++) {
          prob[size_t(j)] /= sum;
          const float* vr = v.as<float>() + ((t0 + j) * Hkv + hk) * D;
          float dot = 0.0f;
          for (int64_t d = 0; d < D; d++) dot += g[d] * vr[d];
          dp[size_t(j)] = dot;
          pdp += prob[size_t(j)] * dot;
        }
        for (int64_t j = 0; j < n; j++) {
          const float ds = prob[size_t(j)] * (dp[size_t(j)] - pdp) * p.scale;
          const float* kr = k.as<float>() + ((t0 + j) * Hkv + hk) * D;
          float* dkr = dk.as<float>() + ((t0 + j) * Hkv + hk) * D;
          float* dvr = dv.as<float>() + ((t0 + j) * Hkv + hk) * D;
          for (int64_t d = 0; d < D; d++) {
            dq.as<float>()[(t * H + h) * D + d] += ds * kr[d];
            dkr[d] += ds * qr[d];
            dvr[d] += prob[size_t(j)] * g[d];
          }
        }
      }
    }
  }
}

void swiglu_backward(const Tensor& dgate, const Tensor& dup, const Tensor& dout, const Tensor& gate, const Tensor& up) {
  opcheck::elementwise(dout, gate, up);
  opcheck::elementwise(dgate, dup, dout);
  const int64_t n = dout.numel();
  for (int64_t i = 0; i < n; i++) {
    const float g = gate.as<float>()[i], sg = sigmoid(g), d = dout.as<float>()[i];
    dgate.as<float>()[i] = d * up.as<float>()[i] * sg * (1.0f + g * (1.0f - sg));
    dup.as<float>()[i] = d * g * sg;
  }
}

void lmhead_lse_forward(const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp,
                        const Tensor& running_max, const Tensor& running_sum, const Tensor& target_logit) {
  require_f32(logits, "lmhead_lse logits");
  const int64_t T = logits.rows(), Vc = logits.cols();
  MOTIF_CHECK(targets.numel() == T && running_max.numel() == T && running_sum.numel() == T && target_logit.numel() == T,
              InvalidArgument, "lmhead_lse: per-row tensors must have T entries");
  for (int64_t t = 0; t < T; t++) {
    const float* z = logits.as<float>() + t * Vc;
    float m = running_max.as<float>()[t];
    for (int64_t j = 0; j < Vc; j++) m = std::max(m, z[j] * inv_temp);
    float s = running_sum.as<float>()[t] * std::exp(running_max.as<float>()[t] - m);
    if (!std::isfinite(s)) s = 0.0f;  // first chunk: exp(-inf - m)
    for (int64_t j = 0; j < Vc; j++) s += std::exp(z[j] * inv_temp - m);
    running_max.as<float>()[t] = m;
    running_sum.as<float>()[t] = s;
    const int32_t y = targets.as<int32_t>()[t];
    if (y >= v0 && y < v0 + Vc) target_logit.as<float>()[t] = z[y - v0];
  }
}

void lmhead_grad_forward(const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp, const Tensor& lse,
                         const Tensor& coef) {
  require_f32(logits, "lmhead_grad logits");
  const int64_t T = logits.rows(), Vc = logits.cols();
  for (int64_t t = 0; t < T; t++) {
    float* z = logits.as<float>() + t * Vc;
    const float c = coef.as<float>()[t], l = lse.as<float>()[t];
    const int32_t y = targets.as<int32_t>()[t];
    for (int64_t j = 0; j < Vc; j++) {
      const float onehot = (v0 + j == y) ? 1.0f : 0.0f;
      z[j] = c == 0.0f ? 0.0f : c * (onehot - std::exp(z[j] * inv_temp - l)) * inv_temp;
    }
  }
}

void adamw_update(const Tensor& p, const Tensor& m, const Tensor& v, const Tensor& g, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step) {
  MOTIF_CHECK(p.numel() == m.numel() && p.numel() == v.numel() && p.numel() == g.numel() && step >= 1, InvalidArgument,
              "adamw: p, m, v, g must have the same size and step >= 1");
  const double bc1 = 1.0 - std::pow(double(beta1), double(step));
  const double bc2 = 1.0 - std::pow(double(beta2), double(step));
  const float step_size = float(lr / bc1);
  const float bc2_sqrt = float(std::sqrt(bc2));
  for (int64_t i = 0; i < p.numel(); i++) {
    float& pi = p.as<float>()[i];
    float& mi = m.as<float>()[i];
    float& vi = v.as<float>()[i];
    const float gi = g.as<float>()[i];
    pi *= 1.0f - lr * weight_decay;
    mi = beta1 * mi + (1.0f - beta1) * gi;
    vi = beta2 * vi + (1.0f - beta2) * gi * gi;
    const float denom = std::sqrt(vi) / bc2_sqrt + eps;
    pi -= step_size * mi / denom;
  }
}

void scale_forward(const Tensor& x, float s) {
  require_f32(x, "scale x");
  for (int64_t i = 0; i < x.numel(); i++) x.as<float>()[i] *= s;
}

}  // namespace ref

namespace fast {

void lora_forward(ThreadPool& pool, const Tensor& out, const Tensor& tmp, const Tensor& x, const Tensor& a,
                  const Tensor& b, float scale) {
  check_lora(out, tmp, x, a, b);
  fast::matmul_forward(pool, tmp, x, a, Tensor{});
  fast::matmul_accumulate(pool, out, tmp, b, scale);
}

namespace {

// dx[t, kk:kk+V·kWidth] += Σ_n dy[t, n] · w[n, kk:kk+V·kWidth] for TT tokens over nb weight rows
// `ws` (f32, row stride ldws), V vectors of k: TT x V accumulators stay in registers while the
// rows stream by (each row load feeds TT FMAs; dy values are broadcast).
template <int TT, int V>
void axpy_tile(const float* const* dy_rows, float* const* dx_rows, int64_t kk, const float* ws, int64_t ldws,
               int64_t nb) {
#if MOTIF_AVX2
  constexpr int W = simd::kWidth;
  simd::vec acc[TT][V];
  for (int t = 0; t < TT; t++)
    for (int v = 0; v < V; v++) acc[t][v] = simd::load(dx_rows[t] + kk + v * W);
  for (int64_t n = 0; n < nb; n++) {
    simd::vec wv[V];
    for (int v = 0; v < V; v++) wv[v] = simd::load(ws + n * ldws + kk + v * W);
    for (int t = 0; t < TT; t++) {
      const simd::vec g = simd::set1(dy_rows[t][n]);
      for (int v = 0; v < V; v++) acc[t][v] = simd::fma(g, wv[v], acc[t][v]);
    }
  }
  for (int t = 0; t < TT; t++)
    for (int v = 0; v < V; v++) simd::store(dx_rows[t] + kk + v * W, acc[t][v]);
#else
  (void)dy_rows, (void)dx_rows, (void)kk, (void)ws, (void)ldws, (void)nb;
#endif
}

// The same for a tail of `len` columns at kk (scalar), TT tokens.
void axpy_tail(const float* const* dy_rows, float* const* dx_rows, int tt, int64_t kk, int64_t len, const float* ws,
               int64_t ldws, int64_t nb) {
  for (int t = 0; t < tt; t++)
    for (int64_t k = kk; k < kk + len; k++) {
      float acc = dx_rows[t][k];
      for (int64_t n = 0; n < nb; n++) acc += dy_rows[t][n] * ws[n * ldws + k];
      dx_rows[t][k] = acc;
    }
}

// Runs axpy tiles over tt (<= 4) tokens and the columns [0, len) of a block of nb rows.
template <int TT>
void axpy_block(const float* const* dy_rows, float* const* dx_rows, int64_t len, const float* ws, int64_t ldws,
                int64_t nb) {
  int64_t kk = 0;
#if MOTIF_AVX2
  constexpr int64_t W = simd::kWidth;
  for (; kk + 2 * W <= len; kk += 2 * W) axpy_tile<TT, 2>(dy_rows, dx_rows, kk, ws, ldws, nb);
  for (; kk + W <= len; kk += W) axpy_tile<TT, 1>(dy_rows, dx_rows, kk, ws, ldws, nb);
#endif
  if (kk < len) axpy_tail(dy_rows, dx_rows, TT, kk, len - kk, ws, ldws, nb);
}

}  // namespace

void matmul_backward_input(ThreadPool& pool, const Tensor& dx, const Tensor& dy, const Tensor& w, bool accumulate) {
  check_mm_backward_input(dx, dy, w);
  const int64_t T = dy.rows(), N = w.shape[0], K = w.shape[1];
  // Tokens whose dy row is all zeros (rows outside the loss at the LM head) add nothing.
  std::vector<int64_t> active;
  for (int64_t t = 0; t < T; t++) {
    const float* g = dy.as<float>() + t * N;
    if (std::any_of(g, g + N, [](float v) { return v != 0.0f; })) active.push_back(t);
  }
  // Each task owns a slice of K columns of dx; it walks the weight rows in blocks of NB (widened to
  // f32 once per block when 16-bit) and, per block, runs register tiles of 4 tokens x 2 vectors.
  constexpr int64_t NB = 64;
  const int64_t align = 2 * simd::kWidth;
  const int64_t kc =
      std::max<int64_t>(align, ((K + pool.n_threads() * 4 - 1) / (pool.n_threads() * 4) + align - 1) / align * align);
  pool.parallel_for((K + kc - 1) / kc, [&](int64_t task, int) {
    const int64_t k0 = task * kc, k1 = std::min(K, k0 + kc), len = k1 - k0;
    if (!accumulate)  // tokens with no gradient still get their zeros
      for (int64_t t = 0; t < T; t++) std::fill(dx.as<float>() + t * K + k0, dx.as<float>() + t * K + k1, 0.0f);
    if (active.empty()) return;
    thread_local std::vector<float> wblock;
    if (w.type != DType::F32) wblock.resize(size_t(NB * len));
    for (int64_t n0 = 0; n0 < N; n0 += NB) {
      const int64_t nb = std::min(NB, N - n0);
      const float* ws;
      int64_t ldws;
      if (w.type == DType::F32) {
        ws = w.as<float>() + n0 * K + k0;
        ldws = K;
      } else {
        for (int64_t n = 0; n < nb; n++)
          simd::to_f32(w.type, w.as<uint16_t>() + (n0 + n) * K + k0, wblock.data() + n * len, len);
        ws = wblock.data();
        ldws = len;
      }
      // Every block accumulates into dx (zeroed above unless the op accumulates).
      for (size_t i = 0; i < active.size(); i += 4) {
        const int tt = int(std::min<size_t>(4, active.size() - i));
        const float* dy_rows[4];
        float* dx_rows[4];
        for (int t = 0; t < tt; t++) {
          dy_rows[t] = dy.as<float>() + active[i + size_t(t)] * N + n0;
          dx_rows[t] = dx.as<float>() + active[i + size_t(t)] * K + k0;
        }
        switch (tt) {
          case 4: axpy_block<4>(dy_rows, dx_rows, len, ws, ldws, nb); break;
          case 3: axpy_block<3>(dy_rows, dx_rows, len, ws, ldws, nb); break;
          case 2: axpy_block<2>(dy_rows, dx_rows, len, ws, ldws, nb); break;
          default: axpy_block<1>(dy_rows, dx_rows, len, ws, ldws, nb); break;
        }
      }
    }
  });
}

void matmul_backward_weight(ThreadPool& pool, const Tensor& dw, const Tensor& dy, const Tensor& x, float scale) {
  check_mm_backward_weight(dw, dy, x);
  const int64_t T = dy.rows(), N = dw.shape[0], K = dw.shape[1];
  pool.parallel_for(N, [&](int64_t n, int) {
    float* o = dw.as<float>() + n * K;
    for (int64_t t = 0; t < T; t++) {
      const float g = scale * dy.as<float>()[t * N + n];
      if (g == 0.0f) continue;
      const float* xr = x.as<float>() + t * K;
      for (int64_t k = 0; k < K; k++) o[k] += g * xr[k];
    }
  });
}

void lmhead_lse_forward(ThreadPool& pool, const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp,
                        const Tensor& running_max, const Tensor& running_sum, const Tensor& target_logit) {
  const int64_t T = logits.rows();
  pool.parallel_for(T, [&](int64_t t, int) {
    const Tensor row = make_tensor(DType::F32, logits.as<float>() + t * logits.cols(), 1, logits.cols());
    const Tensor one_t = make_tensor(DType::I32, targets.as<int32_t>() + t, 1);
    ref::lmhead_lse_forward(row, v0, one_t, inv_temp, make_tensor(DType::F32, running_max.as<float>() + t, 1),
                            make_tensor(DType::F32, running_sum.as<float>() + t, 1),
                            make_tensor(DType::F32, target_logit.as<float>() + t, 1));
  });
}

void lmhead_grad_forward(ThreadPool& pool, const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp,
                         const Tensor& lse, const Tensor& coef) {
  const int64_t T = logits.rows();
  pool.parallel_for(T, [&](int64_t t, int) {
    const Tensor row = make_tensor(DType::F32, logits.as<float>() + t * logits.cols(), 1, logits.cols());
    ref::lmhead_grad_forward(row, v0, make_tensor(DType::I32, targets.as<int32_t>() + t, 1), inv_temp,
                             make_tensor(DType::F32, lse.as<float>() + t, 1),
                             make_tensor(DType::F32, coef.as<float>() + t, 1));
  });
}

}  // namespace fast
}  // namespace motif
