// trainable.h — a set of trainable f32 tensors as the optimizer and the gradient calls see it:
// each tensor's name, weights, gradient accumulator and AdamW moments, all in backend memory.
//
// Two kinds exist: a LoRA adapter (lora.h: A and B per adapted projection, under PEFT names) and
// full-parameter training (full-params.h: f32 copies of every base weight, under HF names). The
// model holds at most one of them; model.cpp's lossAndGradients / optimizerStep work on either.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../backend/backend.h"

namespace motif {

struct TrainableTensor {
  std::string name;
  Tensor w, g, m, v;  // weights, accumulated gradient, AdamW first and second moments (same shape)
  bool decay = true;  // AdamW's weight decay applies (not to norm scales and biases)
};

class TrainableSet {
 public:
  // `owner` names the set in errors ("the adapter", "the model").
  TrainableSet(Backend& backend, std::string owner);
  virtual ~TrainableSet();
  TrainableSet(const TrainableSet&) = delete;
  TrainableSet& operator=(const TrainableSet&) = delete;

  const std::vector<TrainableTensor>& tensors() const { return tensors_; }
  std::vector<std::string> names() const;
  // The tensor called `name`; which: "weight" | "grad" | "exp_avg" | "exp_avg_sq".
  Tensor tensor(const std::string& name, const std::string& which) const;
  void zero_grads();

  int64_t step = 0;  // optimizer steps taken
  // Identifies the current weights: a fresh value, unique in the process, after every change
  // (creation, a write, an optimizer step). The prefix cache keys blocks by it, so K/V computed
  // under older weights is never reused.
  uint64_t version() const { return version_; }
  void mark_changed();

 protected:
  // A backend f32 tensor of `shape`, from `init` (numel floats) or zeros; freed with the set.
  Tensor alloc(const std::vector<int64_t>& shape, const float* init);
  // Registers a tensor with fresh zero gradient and moments.
  void add(const std::string& name, const Tensor& w, bool decay);

  Backend& backend_;

 private:
  std::string owner_;
  uint64_t version_ = 0;
  std::vector<TrainableTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::vector<void*> buffers_;
};

}  // namespace motif
