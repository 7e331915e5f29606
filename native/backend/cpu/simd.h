// simd.h — the few vector primitives the fast CPU paths use, for AVX2+FMA(+F16C) or scalar.
//
// A source build compiles for the host (-march=native), so __AVX2__/__FMA__/__F16C__ say
// what the machine has. Without them every kernel falls back to the scalar path, which
// computes the same sums in a different order. (A NEON path is not written yet.)
#pragma once

#include <cstdint>

#include "../../core/tensor.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define MOTIF_AVX2 1
#include <immintrin.h>
#endif

namespace motif {
namespace simd {

#if MOTIF_AVX2
constexpr int kWidth = 8;
using vec = __m256;

inline vec zero() { return _mm256_setzero_ps(); }
inline vec load(const float* p) { return _mm256_loadu_ps(p); }
inline vec load(const uint16_t* p, DType t) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (t == DType::BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}
inline void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
inline vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
inline vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
inline vec set1(float x) { return _mm256_set1_ps(x); }
inline float hsum(vec v) {
  __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  __m128 s = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, s);
  s = _mm_add_ss(s, sh);
  return _mm_cvtss_f32(s);
}
#endif

// Converts n elements of a float-typed buffer (F32/F16/BF16) to f32.
inline void to_f32(DType t, const void* src, float* dst, int64_t n) {
  int64_t i = 0;
#if MOTIF_AVX2
  if (t != DType::F32) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (; i + 8 <= n; i += 8) store(dst + i, load(s + i, t));
  }
#endif
  for (; i < n; i++) dst[i] = load_as_f32(t, src, i);
}

}  // namespace simd
}  // namespace motif
