// ref.cpp — the CPU reference ops: plain loops, fp32, fixed accumulation order.
//
// This file is the executable spec of every op in ops.def. It is slow on purpose: no
// threads, no SIMD, no blocking. The CPU backend runs it when created with use_ref
// (BackendOptions::use_ref, MOTIF_CPU_REF=1), and test-backend-ops compares every other
// implementation against it. Shape letters: T tokens, C channels, N/K matmul out/in,
// H heads, Hkv kv heads, D head dim, V vocab.
#include <cmath>
#include <vector>

#include "../../core/status.h"
#include "ops-cpu.h"

namespace motif {

// ---------------------------------------------------------------------------------
// shape checks (shared with the fast paths and other backends)

namespace opcheck {

static void require_f32(const Tensor& t, const char* what) {
  MOTIF_CHECK(t.type == DType::F32, InvalidArgument, std::string(what) + " must be F32, got " + dtype_name(t.type));
}
static void require_float(const Tensor& t, const char* what) {
  MOTIF_CHECK(t.type == DType::F32 || t.type == DType::F16 || t.type == DType::BF16, InvalidArgument,
              std::string(what) + " must be F32, F16 or BF16, got " + dtype_name(t.type));
}

void embedding(const Tensor& out, const Tensor& table, const Tensor& ids) {
  require_f32(out, "embedding out");
  require_float(table, "embedding table");
  MOTIF_CHECK(ids.type == DType::I32, InvalidArgument, "embedding ids must be I32");
  MOTIF_CHECK(
      out.rows() == ids.numel() && out.cols() == table.cols(), InvalidArgument,
      "embedding: out " + out.shape_str() + " does not match ids " + ids.shape_str() + " x table " + table.shape_str());
}

void rmsnorm(const Tensor& out, const Tensor& x, const Tensor& w) {
  require_f32(out, "rmsnorm out");
  require_f32(x, "rmsnorm x");
  require_float(w, "rmsnorm weight");
  MOTIF_CHECK(out.numel() == x.numel() && x.cols() == w.numel(), InvalidArgument,
              "rmsnorm: x " + x.shape_str() + ", out " + out.shape_str() + ", w " + w.shape_str());
}

void matmul(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias) {
  require_f32(out, "matmul out");
  require_f32(x, "matmul x");
  require_float(w, "matmul w");
  MOTIF_CHECK(w.ndim == 2 && x.cols() == w.shape[1] && out.cols() == w.shape[0] && out.rows() == x.rows(),
              InvalidArgument,
              "matmul: x " + x.shape_str() + " @ w " + w.shape_str() + "^T does not fit out " + out.shape_str());
  if (bias.data) {
    require_float(bias, "matmul bias");
    MOTIF_CHECK(bias.numel() == w.shape[0], InvalidArgument,
                "matmul: bias " + bias.shape_str() + " vs w " + w.shape_str());
  }
}

void rope(const Tensor& x, const Tensor& pos, const Tensor& inv_freq) {
  require_f32(x, "rope x");
  MOTIF_CHECK(x.ndim == 3 && x.shape[2] % 2 == 0, InvalidArgument,
              "rope: x must be [T,H,D] with even D, got " + x.shape_str());
  MOTIF_CHECK(pos.type == DType::I32 && pos.numel() == x.shape[0], InvalidArgument, "rope: pos must be I32 [T]");
  MOTIF_CHECK(inv_freq.type == DType::F32 && inv_freq.numel() == x.shape[2] / 2, InvalidArgument,
              "rope: inv_freq must be F32 [D/2]");
}

void attention(const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  require_f32(out, "attention out");
  require_f32(q, "attention q");
  require_f32(k, "attention k");
  require_f32(v, "attention v");
  MOTIF_CHECK(p.n_heads > 0 && p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0 && p.head_dim > 0, InvalidArgument,
              "attention: heads " + std::to_string(p.n_heads) + " must be a multiple of kv heads " +
                  std::to_string(p.n_kv_heads));
  const int64_t T = q.rows() * q.cols() / (int64_t(p.n_heads) * p.head_dim);
  MOTIF_CHECK(q.numel() == T * p.n_heads * p.head_dim && k.numel() == T * p.n_kv_heads * p.head_dim &&
                  v.numel() == k.numel() && out.numel() == q.numel(),
              InvalidArgument, "attention: q/k/v/out sizes do not match the head counts");
  MOTIF_CHECK(p.seq_starts != nullptr && p.n_seqs >= 1 && p.seq_starts[0] == 0 && p.seq_starts[p.n_seqs] == T,
              InvalidArgument, "attention: seq_starts must run from 0 to T");
  for (int s = 0; s < p.n_seqs; s++)
    MOTIF_CHECK(p.seq_starts[s + 1] >= p.seq_starts[s], InvalidArgument, "attention: seq_starts must not decrease");
}

void elementwise(const Tensor& out, const Tensor& a, const Tensor& b) {
  require_f32(out, "out");
  require_f32(a, "a");
  require_f32(b, "b");
  MOTIF_CHECK(out.numel() == a.numel() && a.numel() == b.numel(), InvalidArgument,
              "elementwise: sizes " + out.shape_str() + ", " + a.shape_str() + ", " + b.shape_str() + " differ");
}

}  // namespace opcheck

// ---------------------------------------------------------------------------------
// reference ops

namespace ref {

void embedding_forward(const Tensor& out, const Tensor& table, const Tensor& ids) {
  opcheck::embedding(out, table, ids);
  const int64_t T = ids.numel(), C = table.cols(), V = table.rows();
  for (int64_t t = 0; t < T; t++) {
    const int32_t id = ids.as<int32_t>()[t];
    MOTIF_CHECK(id >= 0 && id < V, InvalidArgument,
                "token id " + std::to_string(id) + " at position " + std::to_string(t) + " is outside [0, " +
                    std::to_string(V) + ")");
    for (int64_t c = 0; c < C; c++) out.as<float>()[t * C + c] = load_as_f32(table.type, table.data, id * C + c);
  }
}

void rmsnorm_forward(const Tensor& out, const Tensor& x, const Tensor& w, float eps) {
  opcheck::rmsnorm(out, x, w);
  const int64_t T = x.rows(), C = x.cols();
  for (int64_t t = 0; t < T; t++) {
    const float* xr = x.as<float>() + t * C;
    float* o = out.as<float>() + t * C;
    float ss = 0.0f;
    for (int64_t c = 0; c < C; c++) ss += xr[c] * xr[c];
    const float inv = 1.0f / std::sqrt(ss / float(C) + eps);
    for (int64_t c = 0; c < C; c++) o[c] = xr[c] * inv * load_as_f32(w.type, w.data, c);
  }
}

void matmul_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias) {
  opcheck::matmul(out, x, w, bias);
  const int64_t T = x.rows(), K = x.cols(), N = w.shape[0];
  for (int64_t t = 0; t < T; t++) {
    const float* xr = x.as<float>() + t * K;
    for (int64_t n = 0; n < N; n++) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; k++) acc += xr[k] * load_as_f32(w.type, w.data, n * K + k);
      if (bias.data) acc += load_as_f32(bias.type, bias.data, n);
      out.as<float>()[t * N + n] = acc;
    }
  }
}

void rope_forward(const Tensor& x, const Tensor& pos, const Tensor& inv_freq) {
  opcheck::rope(x, pos, inv_freq);
  const int64_t T = x.shape[0], H = x.shape[1], D = x.shape[2], half = D / 2;
  for (int64_t t = 0; t < T; t++) {
    const float p = float(pos.as<int32_t>()[t]);
    for (int64_t h = 0; h < H; h++) {
      float* row = x.as<float>() + (t * H + h) * D;
      for (int64_t i = 0; i < half; i++) {
        const float angle = p * inv_freq.as<float>()[i];
        const float c = std::cos(angle), s = std::sin(angle);
        const float x1 = row[i], x2 = row[i + half];
        row[i] = x1 * c - x2 * s;
        row[i + half] = x2 * c + x1 * s;
      }
    }
  }
}

void attention_forward(const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  opcheck::attention(out, q, k, v, p);
  const int64_t H = p.n_heads, Hkv = p.n_kv_heads, D = p.head_dim, group = H / Hkv;
  std::vector<float> scores;
  for (int s = 0; s < p.n_seqs; s++) {
    const int64_t t0 = p.seq_starts[s], t1 = p.seq_starts[s + 1];
    for (int64_t t = t0; t < t1; t++) {
      for (int64_t h = 0; h < H; h++) {
        const int64_t hk = h / group;
        const float* qr = q.as<float>() + (t * H + h) * D;
        scores.assign(size_t(t - t0 + 1), 0.0f);
        float mx = -INFINITY;
        for (int64_t j = t0; j <= t; j++) {
          const float* kr = k.as<float>() + (j * Hkv + hk) * D;
          float dot = 0.0f;
          for (int64_t d = 0; d < D; d++) dot += qr[d] * kr[d];
          scores[size_t(j - t0)] = dot * p.scale;
          mx = std::max(mx, scores[size_t(j - t0)]);
        }
        float sum = 0.0f;
        for (auto& sc : scores) {
          sc = std::exp(sc - mx);
          sum += sc;
        }
        float* o = out.as<float>() + (t * H + h) * D;
        for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
        for (int64_t j = t0; j <= t; j++) {
          const float wgt = scores[size_t(j - t0)] / sum;
          const float* vr = v.as<float>() + (j * Hkv + hk) * D;
          for (int64_t d = 0; d < D; d++) o[d] += wgt * vr[d];
        }
      }
    }
  }
}

void swiglu_forward(const Tensor& out, const Tensor& gate, const Tensor& up) {
  opcheck::elementwise(out, gate, up);
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; i++) {
    const float g = gate.as<float>()[i];
    out.as<float>()[i] = g / (1.0f + std::exp(-g)) * up.as<float>()[i];
  }
}

void add_forward(const Tensor& out, const Tensor& a, const Tensor& b) {
  opcheck::elementwise(out, a, b);
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; i++) out.as<float>()[i] = a.as<float>()[i] + b.as<float>()[i];
}

}  // namespace ref
}  // namespace motif
