// model.cpp — the public API of motif.h: picking a backend, loading, forward, build info.
#include <cstdlib>

#include "../backend/backend.h"
#include "../core/threadpool.h"
#include "../include/motif.h"
#include "engine.h"
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
  auto backend = choose_backend(params, &model->device_note);
  model->impl = std::make_unique<Qwen2Model>(dir, std::move(backend));
  return model.release();
}

void model_free(Model* model) { delete model; }

const ModelConfig& model_config(const Model* model) { return model->impl->config(); }
std::string model_backend_name(const Model* model) { return model->impl->backend().name(); }
std::string model_device_note(const Model* model) { return model->device_note; }
size_t model_weight_bytes(const Model* model) { return model->impl->weight_bytes(); }
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
