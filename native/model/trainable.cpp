// trainable.cpp — the TrainableSet declared in trainable.h.
#include "trainable.h"

#include <algorithm>
#include <atomic>

#include "../core/status.h"

namespace motif {

TrainableSet::TrainableSet(Backend& backend, std::string owner) : backend_(backend), owner_(std::move(owner)) {
  mark_changed();
}

TrainableSet::~TrainableSet() {
  for (void* p : buffers_) backend_.release(p);
}

void TrainableSet::mark_changed() {
  static std::atomic<uint64_t> next{1};
  version_ = next.fetch_add(1);
}

Tensor TrainableSet::alloc(const std::vector<int64_t>& shape, const float* init) {
  MOTIF_CHECK(shape.size() >= 1 && shape.size() <= 2, Internal, "trainable tensors are 1-D or 2-D");
  Tensor t = make_tensor(DType::F32, nullptr, shape[0], shape.size() > 1 ? shape[1] : -1);
  t.data = backend_.alloc(t.nbytes());
  buffers_.push_back(t.data);
  if (init) {
    backend_.upload(t.data, init, t.nbytes());
  } else {
    const std::vector<float> zeros(size_t(t.numel()), 0.0f);
    backend_.upload(t.data, zeros.data(), t.nbytes());
  }
  return t;
}

void TrainableSet::add(const std::string& name, const Tensor& w, bool decay) {
  MOTIF_CHECK(index_.count(name) == 0, Internal, "trainable tensor '" + name + "' registered twice");
  std::vector<int64_t> shape(w.shape, w.shape + w.ndim);
  TrainableTensor t;
  t.name = name;
  t.w = w;
  t.g = alloc(shape, nullptr);
  t.m = alloc(shape, nullptr);
  t.v = alloc(shape, nullptr);
  t.decay = decay;
  index_[name] = tensors_.size();
  tensors_.push_back(t);
}

std::vector<std::string> TrainableSet::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

Tensor TrainableSet::tensor(const std::string& name, const std::string& which) const {
  const auto it = index_.find(name);
  MOTIF_CHECK(it != index_.end(), InvalidArgument, owner_ + " has no trainable tensor '" + name + "'");
  const TrainableTensor& t = tensors_[it->second];
  if (which == "weight") return t.w;
  if (which == "grad") return t.g;
  if (which == "exp_avg") return t.m;
  if (which == "exp_avg_sq") return t.v;
  throw Error(ErrorCode::InvalidArgument,
              "unknown tensor kind '" + which + "' (expected weight, grad, exp_avg or exp_avg_sq)");
}

void TrainableSet::zero_grads() {
  size_t largest = 0;
  for (const auto& t : tensors_) largest = std::max(largest, size_t(t.g.numel()));
  const std::vector<float> zeros(largest, 0.0f);
  for (const auto& t : tensors_) backend_.upload(t.g.data, zeros.data(), t.g.nbytes());
}

}  // namespace motif
