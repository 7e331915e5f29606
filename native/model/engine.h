// engine.h — the rollout engine: continuous batching over a paged KV cache with prefix sharing.
//
// generate() takes every request of a round at once. Each step runs one forward over a mixed
// batch: one decode row for every running sequence plus chunks of pending prompts (a token
// budget per step), computing logits only for rows that sample. A request with n > 1 prefills
// its prompt once and forks n sequences that share its blocks copy-on-write; full blocks are
// published to the prefix cache, so later prompts with the same prefix (the system prompt and
// question of MOTIF's rounds) skip that work. When the pool runs out, the newest sequences are
// preempted (blocks freed, recomputed later with the same randomness, so outputs are unchanged).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/threadpool.h"
#include "kv-cache.h"
#include "qwen2.h"
#include "sampler.h"

namespace motif {

struct EngineConfig {
  size_t kv_cache_bytes = 0;  // 0 = a default from free memory (see engine.cpp)
  int32_t block_size = 16;
  int32_t max_step_tokens = 256;  // rows per step (decode rows + prefill chunks)
  int32_t n_threads = 0;          // sampling threads; 0 = hardware concurrency
};

class Engine {
 public:
  Engine(Qwen2Model& model, const EngineConfig& config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  std::vector<GenerateResult> generate(const std::vector<GenerateRequest>& requests, const GenerateHooks& hooks,
                                       GenerateStats* stats);

  KvBlockPool& pool() { return *pool_; }
  size_t kv_cache_bytes() const { return kv_bytes_; }
  // Validates a request against the model and the pool; throws InvalidArgument naming `index`.
  void validate(const GenerateRequest& r, size_t index) const;

 private:
  Qwen2Model& model_;
  EngineConfig cfg_;
  std::unique_ptr<KvBlockPool> pool_;
  KvStorage kv_;
  std::vector<void*> kv_buffers_;
  size_t kv_bytes_ = 0;
  ThreadPool sample_pool_;
  std::vector<SamplerScratch> scratch_;
};

}  // namespace motif
