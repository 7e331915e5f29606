// tensor.h — dtypes, half-precision conversions and the tensor view the ops take.
//
// A Tensor is a view: a dtype, a row-major shape (outermost first, like PyTorch) and
// a data pointer owned by someone else (a memory-mapped file, a backend buffer, a
// std::vector). Ops take contiguous views; a row of a matrix is shape[ndim-1] elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace motif {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2, I32 = 3 };

const char* dtype_name(DType t);
size_t dtype_size(DType t);

struct Tensor {
  DType type = DType::F32;
  int32_t ndim = 0;
  int64_t shape[4] = {0, 0, 0, 0};
  void* data = nullptr;

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
  }
  size_t nbytes() const { return size_t(numel()) * dtype_size(type); }
  int64_t rows() const { return ndim == 0 ? 1 : numel() / shape[ndim - 1]; }
  int64_t cols() const { return ndim == 0 ? 1 : shape[ndim - 1]; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
  std::string shape_str() const;
};

Tensor make_tensor(DType type, void* data, int64_t d0, int64_t d1 = -1, int64_t d2 = -1, int64_t d3 = -1);
bool tensor_is_present(const Tensor& t);

// ---------------------------------------------------------------------------
// half-precision scalars (bit patterns stored as uint16_t)

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, NaN stays NaN (as PyTorch's conversion does).
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Reads element i of a float-typed buffer (F32, F16 or BF16) as f32.
inline float load_as_f32(DType t, const void* data, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(data)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    default: return 0.0f;
  }
}

}  // namespace motif
