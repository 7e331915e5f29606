// test-grad.cpp — every backward op of the CPU reference against central finite differences of
// its forward op (llm.c / test-backend-ops "grad mode").
//
// For an op y = f(x) and a random upstream gradient R, the scalar L(x) = sum(R * f(x)) has
// dL/dx = backward(R). We compare the backward op with (L(x + e_i h) - L(x - e_i h)) / 2h at
// sampled coordinates i, with h = 1e-2 on f32 inputs: bound |num - ana| <= 1e-2 * max(1, |ana|).
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../../native/backend/backend.h"

using namespace motif;

static int g_passed = 0, g_failed = 0;
static std::mt19937 g_rng(7);

static std::vector<float> rand_vec(size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

static Tensor T2(std::vector<float>& v, int64_t a, int64_t b) { return make_tensor(DType::F32, v.data(), a, b); }
static Tensor T3(std::vector<float>& v, int64_t a, int64_t b, int64_t c) {
  return make_tensor(DType::F32, v.data(), a, b, c);
}

// Compares analytic gradient `ana` of L wrt `x` with finite differences of `loss` at up to 24 coordinates.
static void check(const std::string& name, std::vector<float>& x, const std::vector<float>& ana,
                  const std::function<double()>& loss) {
  double worst = 0;
  const size_t n = x.size();
  for (int s = 0; s < 24 && s < int(n); s++) {
    const size_t i = n <= 24 ? size_t(s) : size_t(g_rng() % n);
    const float keep = x[i], h = 1e-2f;
    x[i] = keep + h;
    const double lp = loss();
    x[i] = keep - h;
    const double lm = loss();
    x[i] = keep;
    const double num = (lp - lm) / (2.0 * h);
    worst = std::max(worst, std::fabs(num - ana[i]) / std::max(1.0, std::fabs(double(ana[i]))));
  }
  const bool ok = worst <= 1e-2;
  ok ? g_passed++ : g_failed++;
  std::printf("  %-40s worst relative error %.2e %s\n", name.c_str(), worst, ok ? "OK" : "FAIL");
}

static double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += double(a[i]) * double(b[i]);
  return s;
}

int main() {
  auto be = backend_create("cpu-ref", {});
  Backend& b = *be;

  {  // matmul: dx and dw
    const int64_t T = 5, K = 7, N = 6;
    auto x = rand_vec(size_t(T * K)), w = rand_vec(size_t(N * K)), R = rand_vec(size_t(T * N));
    std::vector<float> y(size_t(T * N)), dx(size_t(T * K)), dw(size_t(N * K), 0.0f);
    auto L = [&] {
      b.matmul_forward(T2(y, T, N), T2(x, T, K), T2(w, N, K), Tensor{});
      return dot(y, R);
    };
    b.matmul_backward_input(T2(dx, T, K), T2(R, T, N), T2(w, N, K), false);
    check("matmul_backward_input", x, dx, L);
    b.matmul_backward_weight(T2(dw, N, K), T2(R, T, N), T2(x, T, K), 1.0f);
    check("matmul_backward_weight", w, dw, L);
  }
  {  // rmsnorm
    const int64_t T = 3, C = 9;
    auto x = rand_vec(size_t(T * C)), w = rand_vec(size_t(C), 0.5f, 1.5f), R = rand_vec(size_t(T * C));
    std::vector<float> y(size_t(T * C)), dx(size_t(T * C), 0.0f);
    auto L = [&] {
      b.rmsnorm_forward(T2(y, T, C), T2(x, T, C), make_tensor(DType::F32, w.data(), C), 1e-6f);
      return dot(y, R);
    };
    b.rmsnorm_backward(T2(dx, T, C), T2(R, T, C), T2(x, T, C), make_tensor(DType::F32, w.data(), C), 1e-6f);
    check("rmsnorm_backward", x, dx, L);
  }
  {  // the weight gradients of full-parameter training: rmsnorm's scale, a bias, the embedding table
    const int64_t T = 4, C = 6, N = 5, V = 7;
    auto x = rand_vec(size_t(T * C)), w = rand_vec(size_t(C), 0.5f, 1.5f), R = rand_vec(size_t(T * C));
    std::vector<float> y(size_t(T * C)), dw(size_t(C), 0.0f);
    auto Lnorm = [&] {
      b.rmsnorm_forward(T2(y, T, C), T2(x, T, C), make_tensor(DType::F32, w.data(), C), 1e-6f);
      return dot(y, R);
    };
    b.rmsnorm_backward_weight(make_tensor(DType::F32, dw.data(), C), T2(R, T, C), T2(x, T, C), 1e-6f);
    check("rmsnorm_backward_weight", w, dw, Lnorm);

    auto mw = rand_vec(size_t(N * C)), bias = rand_vec(size_t(N)), Rn = rand_vec(size_t(T * N));
    std::vector<float> yn(size_t(T * N)), db(size_t(N), 0.0f);
    auto Lbias = [&] {
      b.matmul_forward(T2(yn, T, N), T2(x, T, C), T2(mw, N, C), make_tensor(DType::F32, bias.data(), N));
      return dot(yn, Rn);
    };
    b.bias_backward(make_tensor(DType::F32, db.data(), N), T2(Rn, T, N));
    check("bias_backward", bias, db, Lbias);

    auto table = rand_vec(size_t(V * C));
    std::vector<int32_t> ids = {3, 0, 3, 6};  // a repeated id: its row collects two gradients
    std::vector<float> dtable(size_t(V * C), 0.0f);
    auto Lembed = [&] {
      b.embedding_forward(T2(y, T, C), T2(table, V, C), make_tensor(DType::I32, ids.data(), T));
      return dot(y, R);
    };
    b.embedding_backward(T2(dtable, V, C), T2(R, T, C), make_tensor(DType::I32, ids.data(), T));
    check("embedding_backward", table, dtable, Lembed);
  }
  {  // rope
    const int64_t T = 4, H = 2, D = 8;
    auto x = rand_vec(size_t(T * H * D)), R = rand_vec(size_t(T * H * D));
    std::vector<int32_t> pos = {0, 3, 17, 250};
    std::vector<float> inv(size_t(D / 2));
    for (int64_t i = 0; i < D / 2; i++) inv[size_t(i)] = float(1.0 / std::pow(10000.0, 2.0 * double(i) / double(D)));
    const Tensor pt = make_tensor(DType::I32, pos.data(), T), it = make_tensor(DType::F32, inv.data(), D / 2);
    auto L = [&] {
      std::vector<float> y = x;
      b.rope_forward(T3(y, T, H, D), pt, it);
      return dot(y, R);
    };
    std::vector<float> dx = R;
    b.rope_backward(T3(dx, T, H, D), pt, it);
    check("rope_backward", x, dx, L);
  }
  {  // attention: dq, dk, dv over two packed sequences with GQA
    const int32_t H = 4, Hkv = 2, D = 4;
    std::vector<int32_t> starts = {0, 3, 7};
    const int64_t T = 7;
    AttentionParams p;
    p.seq_starts = starts.data();
    p.n_seqs = 2;
    p.n_heads = H;
    p.n_kv_heads = Hkv;
    p.head_dim = D;
    p.scale = 0.5f;
    auto q = rand_vec(size_t(T * H * D)), k = rand_vec(size_t(T * Hkv * D)), v = rand_vec(size_t(T * Hkv * D));
    auto R = rand_vec(size_t(T * H * D));
    std::vector<float> y(size_t(T * H * D)), dq(q.size()), dk(k.size()), dv(v.size());
    auto L = [&] {
      b.attention_forward(T2(y, T, H * D), T3(q, T, H, D), T3(k, T, Hkv, D), T3(v, T, Hkv, D), p);
      return dot(y, R);
    };
    b.attention_backward(T3(dq, T, H, D), T3(dk, T, Hkv, D), T3(dv, T, Hkv, D), T2(R, T, H * D), T3(q, T, H, D),
                         T3(k, T, Hkv, D), T3(v, T, Hkv, D), p);
    check("attention_backward dq", q, dq, L);
    check("attention_backward dk", k, dk, L);
    check("attention_backward dv", v, dv, L);
  }
  {  // swiglu
    const int64_t n = 20;
    auto g = rand_vec(size_t(n), -4, 4), u = rand_vec(size_t(n)), R = rand_vec(size_t(n));
    std::vector<float> y(static_cast<size_t>(n)), dg(static_cast<size_t>(n)), du(static_cast<size_t>(n));
    auto L = [&] {
      b.swiglu_forward(make_tensor(DType::F32, y.data(), n), make_tensor(DType::F32, g.data(), n),
                       make_tensor(DType::F32, u.data(), n));
      return dot(y, R);
    };
    b.swiglu_backward(make_tensor(DType::F32, dg.data(), n), make_tensor(DType::F32, du.data(), n),
                      make_tensor(DType::F32, R.data(), n), make_tensor(DType::F32, g.data(), n),
                      make_tensor(DType::F32, u.data(), n));
    check("swiglu_backward dgate", g, dg, L);
    check("swiglu_backward dup", u, du, L);
  }
  {  // LM head: L = sum_t coef_t * log_softmax(z_t / temp)[y_t], over two vocab chunks
    const int64_t T = 3, V = 11, split = 6;
    const float temp = 0.7f, inv = 1.0f / temp;
    auto z = rand_vec(size_t(T * V), -3, 3);
    std::vector<int32_t> y = {2, 9, 6};
    std::vector<float> coef = {0.5f, -1.25f, 2.0f};
    auto logps = [&](std::vector<float>& lse_out) {
      std::vector<float> mx(size_t(T), -INFINITY), sum(size_t(T), 0.0f), tl(size_t(T), 0.0f);
      for (int64_t v0 : {int64_t(0), split}) {
        const int64_t vc = v0 == 0 ? split : V - split;
        std::vector<float> chunk(size_t(T * vc));
        for (int64_t t = 0; t < T; t++)
          for (int64_t j = 0; j < vc; j++) chunk[size_t(t * vc + j)] = z[size_t(t * V + v0 + j)];
        b.lmhead_lse_forward(T2(chunk, T, vc), v0, make_tensor(DType::I32, y.data(), T), inv,
                             make_tensor(DType::F32, mx.data(), T), make_tensor(DType::F32, sum.data(), T),
                             make_tensor(DType::F32, tl.data(), T));
      }
      lse_out.resize(size_t(T));
      double L = 0;
      for (int64_t t = 0; t < T; t++) {
        lse_out[size_t(t)] = mx[size_t(t)] + std::log(sum[size_t(t)]);
        L += coef[size_t(t)] * (tl[size_t(t)] * inv - lse_out[size_t(t)]);
      }
      return L;
    };
    std::vector<float> lse;
    logps(lse);
    std::vector<float> grad(size_t(T * V));
    for (int64_t v0 : {int64_t(0), split}) {
      const int64_t vc = v0 == 0 ? split : V - split;
      std::vector<float> chunk(size_t(T * vc));
      for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < vc; j++) chunk[size_t(t * vc + j)] = z[size_t(t * V + v0 + j)];
      b.lmhead_grad_forward(T2(chunk, T, vc), v0, make_tensor(DType::I32, y.data(), T), inv,
                            make_tensor(DType::F32, lse.data(), T), make_tensor(DType::F32, coef.data(), T));
      for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < vc; j++) grad[size_t(t * V + v0 + j)] = chunk[size_t(t * vc + j)];
    }
    std::vector<float> scratch;
    check("lmhead_lse + lmhead_grad (2 chunks)", z, grad, [&] { return logps(scratch); });
  }
  {  // LoRA: out = scale (x a^T) b^T; gradients via the backward ops composed as the model does
    const int64_t T = 4, K = 6, N = 5, r = 3;
    const float s = 0.8f;
    auto x = rand_vec(size_t(T * K)), a = rand_vec(size_t(r * K)), bb = rand_vec(size_t(N * r)),
         R = rand_vec(size_t(T * N));
    std::vector<float> out(size_t(T * N)), tmp(size_t(T * r));
    auto L = [&] {
      std::fill(out.begin(), out.end(), 0.0f);
      b.lora_forward(T2(out, T, N), T2(tmp, T, r), T2(x, T, K), T2(a, r, K), T2(bb, N, r), s);
      return dot(out, R);
    };
    L();
    std::vector<float> db(size_t(N * r), 0.0f), dtmp(size_t(T * r)), da(size_t(r * K), 0.0f), dx(size_t(T * K));
    b.matmul_backward_weight(T2(db, N, r), T2(R, T, N), T2(tmp, T, r), s);  // dB = s dy^T (x a^T)
    b.matmul_backward_input(T2(dtmp, T, r), T2(R, T, N), T2(bb, N, r), false);
    for (auto& g : dtmp) g *= s;                                                // d(x a^T) = s dy b
    b.matmul_backward_weight(T2(da, r, K), T2(dtmp, T, r), T2(x, T, K), 1.0f);  // dA
    b.matmul_backward_input(T2(dx, T, K), T2(dtmp, T, r), T2(a, r, K), false);  // dx
    check("lora dB", bb, db, L);
    check("lora dA", a, da, L);
    check("lora dx", x, dx, L);
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
