// model.cpp — the public API of motif.h: picking a backend, loading, forward, build info.
#include <cmath>
#include <cstdlib>

#include "../backend/backend.h"
#include "../core/threadpool.h"
#include "../include/motif.h"
#include "engine.h"
#include "grpo.h"
#include "qwen2.h"

#ifndef MOTIF_VERSION
#define MOTIF_VERSION "0.0.0"
#endif

namespace motif {

class Model {
 public:
  std::unique_ptr<Qwen2Model> impl;
  std::unique_ptr<Engine> engine;  // created on the first generate()
  LoadParams params;
  std::string device_note;
  std::string weight_storage;  // "map" | "read"

  Engine& get_engine() {
    if (!engine) {
      EngineConfig ec;
      ec.kv_cache_bytes = params.kv_cache_bytes;
      ec.block_size = params.kv_block_size;
      ec.max_step_tokens = params.max_step_tokens;
      ec.n_threads = params.n_threads;
      engine = std::make_unique<Engine>(*impl, ec);
    }
    return *engine;
  }
};

namespace {

std::unique_ptr<Backend> choose_backend(const LoadParams& p, std::string* note) {
  BackendOptions opts;
  opts.n_threads = p.n_threads;
  if (p.device == "auto") {
    std::string why;
    if (!cuda_devices(&why).empty()) return backend_create("cuda", opts);
    *note = "no CUDA device used: " + why;
    return backend_create("cpu", opts);
  }
  return backend_create(p.device, opts);
}

}  // namespace

Model* model_load(const std::string& dir, const LoadParams& params) {
  MOTIF_CHECK(params.n_threads >= 0 && params.n_threads <= 1024, InvalidArgument,
              "threads must be between 0 (automatic) and 1024, got " + std::to_string(params.n_threads));
  MOTIF_CHECK(params.kv_block_size >= 1 && params.kv_block_size <= 1024, InvalidArgument,
              "kvBlockSize must be in [1, 1024], got " + std::to_string(params.kv_block_size));
  MOTIF_CHECK(params.max_step_tokens >= 1, InvalidArgument, "maxStepTokens must be positive");
  auto model = std::make_unique<Model>();
  model->params = params;
  MOTIF_CHECK(params.weights == "auto" || params.weights == "map" || params.weights == "read", InvalidArgument,
              "weights must be 'auto', 'map' or 'read', got '" + params.weights + "'");
  auto backend = choose_backend(params, &model->device_note);
  const bool read = params.weights == "read" || (params.weights == "auto" && backend->name().rfind("cpu", 0) == 0);
  model->weight_storage = read ? "read" : "map";
  model->impl = std::make_unique<Qwen2Model>(dir, std::move(backend), read ? FileLoad::Read : FileLoad::Map);
  return model.release();
}

void model_free(Model* model) { delete model; }

const ModelConfig& model_config(const Model* model) { return model->impl->config(); }
std::string model_backend_name(const Model* model) { return model->impl->backend().name(); }
std::string model_device_note(const Model* model) { return model->device_note; }
size_t model_weight_bytes(const Model* model) { return model->impl->weight_bytes(); }
std::string model_weight_storage(const Model* model) { return model->weight_storage; }
std::string model_weight_dtype(const Model* model) { return dtype_name(model->impl->weight_dtype()); }

void model_forward(Model* model, const int32_t* tokens, const int32_t* seq_lens, int32_t n_seqs, float* logits) {
  model->impl->forward(tokens, seq_lens, n_seqs, logits);
}

std::vector<GenerateResult> model_generate(Model* model, const std::vector<GenerateRequest>& requests,
                                           const GenerateHooks& hooks, GenerateStats* stats) {
  return model->get_engine().generate(requests, hooks, stats);
}

void model_generate_validate(Model* model, const std::vector<GenerateRequest>& requests) {
  Engine& e = model->get_engine();
  for (size_t i = 0; i < requests.size(); i++) e.validate(requests[i], i);
}

KvCacheStats model_kv_cache_stats(Model* model) {
  KvCacheStats s;
  if (!model->engine) return s;
  KvBlockPool& p = model->engine->pool();
  s.n_blocks = p.n_blocks();
  s.block_size = p.block_size();
  s.available = p.n_available();
  s.cached = p.n_cached();
  s.total_refs = p.total_refs();
  s.bytes = model->engine->kv_cache_bytes();
  return s;
}

// --- training ----------------------------------------------------------------------------------

namespace {
LoraAdapter& require_lora(Model* m) {
  LoraAdapter* a = m->impl->lora();
  MOTIF_CHECK(a != nullptr, InvalidArgument, "the model has no LoRA adapter: create or load one first");
  return *a;
}
FullParams& require_full(Model* m) {
  FullParams* f = m->impl->full();
  MOTIF_CHECK(f != nullptr, InvalidArgument, "full-parameter training is not enabled on this model");
  return *f;
}
TrainableSet& require_trainable(Model* m) {
  TrainableSet* t = m->impl->trainable();
  MOTIF_CHECK(t != nullptr, InvalidArgument,
              "the model has nothing to train: create or load a LoRA adapter, or enable full-parameter training");
  return *t;
}
void read_tensor(Model* model, TrainableSet& set, const std::string& name, const std::string& which, float* out,
                 size_t n) {
  const Tensor t = set.tensor(name, which);
  MOTIF_CHECK(size_t(t.numel()) == n, InvalidArgument, name + ": expected " + std::to_string(t.numel()) + " values");
  model->impl->backend().download(out, t.data, t.nbytes());
}
void write_tensor(Model* model, TrainableSet& set, const std::string& name, const std::string& which, const float* in,
                  size_t n) {
  const Tensor t = set.tensor(name, which);
  MOTIF_CHECK(
      size_t(t.numel()) == n, InvalidArgument,
      name + ": expected " + std::to_string(t.numel()) + " values " + t.shape_str() + ", got " + std::to_string(n));
  model->impl->backend().upload(t.data, in, t.nbytes());
  if (which == "weight") set.mark_changed();
}
}  // namespace

void model_lora_create(Model* model, const LoraConfig& config) {
  model->impl->set_lora(std::make_unique<LoraAdapter>(model->impl->backend(), model->impl->config(), config));
}

bool model_lora_active(const Model* model) { return model->impl->lora() != nullptr; }

void model_lora_set_enabled(Model* model, bool enabled) { model->impl->set_lora_enabled(enabled); }

std::vector<std::string> model_lora_names(Model* model) { return require_lora(model).names(); }

std::vector<int64_t> model_lora_shape(Model* model, const std::string& name) {
  const Tensor t = require_lora(model).tensor(name, "weight");
  return {t.shape[0], t.shape[1]};
}

void model_lora_read(Model* model, const std::string& name, const std::string& which, float* out, size_t n) {
  read_tensor(model, require_lora(model), name, which, out, n);
}

void model_lora_write(Model* model, const std::string& name, const std::string& which, const float* in, size_t n) {
  write_tensor(model, require_lora(model), name, which, in, n);
}

int64_t model_lora_step(Model* model) { return require_lora(model).step; }
void model_lora_set_step(Model* model, int64_t step) { require_lora(model).step = step; }

void model_full_enable(Model* model) { model->impl->enable_full_training(); }
bool model_full_active(const Model* model) { return model->impl->full() != nullptr; }
std::vector<std::string> model_full_names(Model* model) { return require_full(model).names(); }
std::vector<int64_t> model_full_shape(Model* model, const std::string& name) {
  const Tensor t = require_full(model).tensor(name, "weight");
  return std::vector<int64_t>(t.shape, t.shape + t.ndim);
}
void model_full_read(Model* model, const std::string& name, const std::string& which, float* out, size_t n) {
  read_tensor(model, require_full(model), name, which, out, n);
}
void model_full_write(Model* model, const std::string& name, const std::string& which, const float* in, size_t n) {
  write_tensor(model, require_full(model), name, which, in, n);
}
int64_t model_full_step(Model* model) { return require_full(model).step; }

GrpoResult model_grpo_loss_and_grads(Model* model, const GrpoBatch& batch, bool accumulate, float scale,
                                     std::vector<std::pair<std::string, std::vector<float>>>* grads) {
  MOTIF_CHECK(!(model->impl->full() && batch.beta > 0 && batch.ref_logps.empty() && batch.loss_type != "sft"),
              InvalidArgument,
              "beta > 0 needs the reference model's log-probs; with full-parameter training the weights as loaded "
              "are not kept, so pass refLogps (or use beta 0)");
  if (!grads && !accumulate) return grpo_loss_and_grads(*model->impl, batch, scale, false);  // loss only
  TrainableSet& set = require_trainable(model);
  Backend& b = model->impl->backend();
  if (!grads) return grpo_loss_and_grads(*model->impl, batch, scale, true);
  // This batch's gradients (of scale x loss) alone: park the accumulators, compute from zero,
  // read, then restore them (plus these gradients when accumulating).
  const auto names = set.names();
  std::vector<std::vector<float>> parked(names.size());
  for (size_t i = 0; i < names.size(); i++) {
    const Tensor g = set.tensor(names[i], "grad");
    parked[i].resize(size_t(g.numel()));
    b.download(parked[i].data(), g.data, g.nbytes());
  }
  set.zero_grads();
  GrpoResult res;
  try {
    res = grpo_loss_and_grads(*model->impl, batch, scale, true);
  } catch (...) {
    for (size_t i = 0; i < names.size(); i++)
      b.upload(set.tensor(names[i], "grad").data, parked[i].data(), parked[i].size() * 4);
    throw;
  }
  grads->clear();
  for (size_t i = 0; i < names.size(); i++) {
    const Tensor g = set.tensor(names[i], "grad");
    std::vector<float> mine(size_t(g.numel()));
    b.download(mine.data(), g.data, g.nbytes());
    if (accumulate)
      for (size_t j = 0; j < mine.size(); j++) parked[i][j] += mine[j];
    b.upload(g.data, parked[i].data(), g.nbytes());
    grads->emplace_back(names[i], std::move(mine));
  }
  return res;
}

AdamWResult model_optimizer_step(Model* model, const AdamWParams& p) {
  TrainableSet& set = require_trainable(model);
  Backend& b = model->impl->backend();
  AdamWResult res;
  // Global L2 norm of the accumulated gradients, summed in double on the host.
  double sq = 0;
  std::vector<float> buf;
  for (const auto& t : set.tensors()) {
    buf.resize(size_t(t.g.numel()));
    b.download(buf.data(), t.g.data, t.g.nbytes());
    for (float x : buf) sq += double(x) * double(x);
  }
  res.grad_norm = std::sqrt(sq);
  if (!std::isfinite(res.grad_norm)) {
    res.skipped = true;
    set.zero_grads();
    return res;
  }
  // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
  const double clip = p.max_grad_norm > 0 ? double(p.max_grad_norm) / (res.grad_norm + 1e-6) : 1.0;
  set.step++;
  for (const auto& t : set.tensors()) {
    if (clip < 1.0) b.scale_forward(t.g, float(clip));
    b.adamw_update(t.w, t.m, t.v, t.g, p.lr, p.beta1, p.beta2, p.eps, t.decay ? p.weight_decay : 0.0f, set.step);
  }
  set.zero_grads();
  set.mark_changed();
  b.synchronize();
  return res;
}

BuildInfo build_info() {
  BuildInfo info;
  info.version = MOTIF_VERSION;
  info.backends = backends_compiled();
  info.simd = cpu_simd_level();
  info.default_threads = ThreadPool::default_threads();
  for (const auto& d : cuda_devices(&info.cuda_note)) {
    CudaDevice c;
    c.index = d.index;
    c.name = d.name;
    c.total_memory = d.total_memory;
    c.compute_major = d.compute_major;
    c.compute_minor = d.compute_minor;
    info.cuda_devices.push_back(c);
  }
  return info;
}

}  // namespace motif
