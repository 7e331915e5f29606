// simd.h — the few vector primitives the fast CPU paths use: AVX-512F (16 floats), AVX2+FMA+F16C
// (8 floats), or scalar.
//
// A source build compiles for the host (-march=native), so __AVX512F__ / __AVX2__ / __FMA__ /
// __F16C__ say what the machine has. MOTIF_AVX2 means "a vector path exists" (AVX2 or wider);
// kernels step by simd::kWidth. Without either, every kernel falls back to the scalar path, which
// computes the same sums in a different order. Define MOTIF_NO_AVX512 to build the AVX2 path on an
// AVX-512 machine (to compare them). (A NEON path is not written yet.)
#pragma once

#include <cstdint>

#include "../../core/tensor.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define MOTIF_AVX2 1
// GCC 12's AVX-512 intrinsics start from _mm*_undefined_*() values and warn about them wherever
// they are inlined (GCC bug 105593, fixed in GCC 13); the state set here covers the header's lines.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

namespace motif {
namespace simd {

#if MOTIF_AVX2 && defined(__AVX512F__) && !defined(MOTIF_NO_AVX512)
#define MOTIF_AVX512 1
constexpr int kWidth = 16;
using vec = __m512;

inline vec zero() { return _mm512_setzero_ps(); }
inline vec load(const float* p) { return _mm512_loadu_ps(p); }
inline vec load(const uint16_t* p, DType t) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if (t == DType::BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}
inline void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
inline vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
inline vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
inline vec set1(float x) { return _mm512_set1_ps(x); }
inline float hsum(vec v) {
  // Fold the upper 256 bits onto the lower ones (a lane shuffle: GCC 12's _mm512_reduce_add_ps
  // trips -Wuninitialized inside its own header), then reduce 8 floats.
  const __m256 h = _mm512_castps512_ps256(_mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E)));
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}
#elif MOTIF_AVX2
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
#else
constexpr int kWidth = 1;  // no vector path: kernels run their scalar loops
#endif

// Converts n elements of a float-typed buffer (F32/F16/BF16) to f32.
inline void to_f32(DType t, const void* src, float* dst, int64_t n) {
  int64_t i = 0;
#if MOTIF_AVX2
  if (t != DType::F32) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (; i + kWidth <= n; i += kWidth) store(dst + i, load(s + i, t));
  }
#endif
  for (; i < n; i++) dst[i] = load_as_f32(t, src, i);
}

}  // namespace simd
}  // namespace motif
