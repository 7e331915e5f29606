// full-params.h — full-parameter training: every weight of the model (embedding, projections and
// their biases, norm scales, the LM head unless tied) becomes an f32 trainable tensor under its HF
// name, with its gradient accumulator and AdamW moments.
//
// Enabling it converts each weight from its file dtype into an f32 copy in backend memory and points
// the model at the copy, so forward, generate and the training pass all run on the weights being
// trained (16 bytes per parameter in all: weights, gradient, two moments). Norm scales and biases
// are exempt from weight decay (HF Trainer's rule). The model holds either this or a LoRA adapter.
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "trainable.h"

namespace motif {

class FullParams : public TrainableSet {
 public:
  // slots: (HF name, the model's tensor). Each slot is converted to f32 and re-pointed at the copy.
  FullParams(Backend& backend, const std::vector<std::pair<std::string, Tensor*>>& slots);

  // The gradient accumulator of the weight whose data is `w.data`; null when `w` is absent (a
  // projection without bias) or not one of the trained tensors.
  const Tensor* grad_of(const Tensor& w) const;

 private:
  std::unordered_map<const void*, size_t> by_data_;
};

}  // namespace motif
