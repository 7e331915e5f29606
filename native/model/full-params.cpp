// full-params.cpp — the FullParams declared in full-params.h.
#include "full-params.h"

#include "../core/status.h"

namespace motif {

FullParams::FullParams(Backend& backend, const std::vector<std::pair<std::string, Tensor*>>& slots)
    : TrainableSet(backend, "the model") {
  std::vector<uint8_t> raw;
  std::vector<float> f32;
  for (const auto& [name, slot] : slots) {
    const Tensor src = *slot;
    MOTIF_CHECK(src.data != nullptr && (src.ndim == 1 || src.ndim == 2), Internal,
                "full-parameter training: weight '" + name + "' is missing or not 1-D/2-D");
    raw.resize(src.nbytes());
    backend_.download(raw.data(), src.data, src.nbytes());
    f32.resize(size_t(src.numel()));
    for (int64_t i = 0; i < src.numel(); i++) f32[size_t(i)] = load_as_f32(src.type, raw.data(), i);
    const Tensor w = alloc(std::vector<int64_t>(src.shape, src.shape + src.ndim), f32.data());
    *slot = w;
    by_data_[w.data] = tensors().size();
    add(name, w, /*decay=*/src.ndim == 2);
  }
}

const Tensor* FullParams::grad_of(const Tensor& w) const {
  if (w.data == nullptr) return nullptr;
  const auto it = by_data_.find(w.data);
  return it == by_data_.end() ? nullptr : &tensors()[it->second].g;
}

}  // namespace motif
