// motif.h — the engine's public C++ API: the only header the N-API binding (and any
// other embedder: C++ tests, benchmarks) includes.
//
// A Model is an opaque handle made by model_load and freed by model_free. Functions throw
// motif::Error (core/status.h, re-exported here) with a code and a message naming the
// file / tensor / field / argument at fault; they never abort or exit.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../core/status.h"

namespace motif {

// What a HuggingFace config.json says, after validation and defaults.
struct ModelConfig {
  std::string architecture;       // "Qwen2ForCausalLM" | "LlamaForCausalLM"
  std::string model_type;         // "qwen2" | "llama"
  int64_t hidden_size = 0;        // C
  int64_t intermediate_size = 0;  // I
  int64_t n_layers = 0;           // L
  int64_t n_heads = 0;            // H
  int64_t n_kv_heads = 0;         // Hkv
  int64_t head_dim = 0;           // D (config head_dim, or C / H)
  int64_t vocab_size = 0;         // V
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::string rope_type = "default";  // "default" | "linear" | "llama3"
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  int64_t rope_original_max_position_embeddings = 8192;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;    // Qwen2: always; Llama: attention_bias
  bool o_bias = false;      // Llama attention_bias
  bool mlp_bias = false;    // Llama mlp_bias
  std::string torch_dtype;  // as written in config.json ("" when absent)
};

struct LoadParams {
  std::string device = "auto";    // "auto" | "cpu" | "cpu-ref" | "cuda"
  int n_threads = 0;              // CPU threads; 0 = hardware concurrency
  size_t kv_cache_bytes = 0;      // KV cache budget for generate(); 0 = a default from free memory
  int32_t kv_block_size = 16;     // tokens per KV block
  int32_t max_step_tokens = 256;  // rows per engine step (decode rows + prefill chunks)
  // "map": the weight files are memory-mapped (no copy; shared page cache). "read": read into
  // private memory backed by transparent huge pages (a copy; faster streaming on the CPU).
  // "auto": read for the CPU backends, map otherwise (a GPU copies the weights to the device).
  std::string weights = "auto";
};

// --- generation ---------------------------------------------------------------------------

// Sampling of one request. Order: temperature, top-k, top-p (of what top-k kept), min-p (relative
// to the most likely token); ties go to the lower token id. temperature 0 = greedy.
struct SamplingParams {
  float temperature = 1.0f;
  int32_t top_k = 0;   // 0 = off
  float top_p = 1.0f;  // 1 = off; (0, 1]
  float min_p = 0.0f;  // 0 = off; [0, 1]
  uint64_t seed = 0;   // same seed (and prompt) => same tokens on the same backend, whatever the batch
};

struct GenerateRequest {
  std::vector<int32_t> prompt;
  int32_t n = 1;            // completions sharing the prompt (forked copy-on-write)
  int32_t max_tokens = 16;  // generated tokens per completion, at most
  SamplingParams sampling;
  std::vector<int32_t> stop;  // token ids that end a completion (the stop token is kept)
};

enum class FinishReason : int32_t { Stop = 0, Length = 1, Abort = 2 };
const char* finish_reason_name(FinishReason r);

struct Completion {
  std::vector<int32_t> tokens;
  // log-prob of each token under the temperature-scaled distribution before top-k/top-p/min-p
  // truncation (plain log-softmax at temperature 0)
  std::vector<float> logprobs;
  FinishReason finish = FinishReason::Length;
};

struct GenerateResult {
  std::vector<Completion> completions;
};

struct GenerateStats {
  int64_t steps = 0;
  int64_t prompt_tokens = 0;   // prompt tokens over all requests (once per request)
  int64_t prefill_tokens = 0;  // prompt / recompute tokens actually computed
  int64_t cached_tokens = 0;   // prompt / recompute tokens served from the prefix cache
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;
  double prefill_seconds = 0;  // wall time of the steps that carried prefill rows
  double seconds = 0;
};

struct GenerateHooks {
  const std::atomic<bool>* abort = nullptr;  // when set: unfinished completions end with Abort
  // Called on the generating thread for every sampled token.
  std::function<void(int32_t request, int32_t completion, int32_t token, float logprob)> on_token;
  // Called on the generating thread after each step's tokens (the abort flag is read next).
  std::function<void()> on_step;
};

struct KvCacheStats {
  int32_t n_blocks = 0;
  int32_t block_size = 0;
  int32_t available = 0;   // free + cached-but-unreferenced blocks
  int32_t cached = 0;      // blocks in the prefix cache
  int64_t total_refs = 0;  // sum of block refcounts: 0 between calls (no leak)
  size_t bytes = 0;
};

class Model;

// Loads a HuggingFace model folder (config.json + model.safetensors, or sharded with
// model.safetensors.index.json). Weights are memory-mapped in their file dtype.
Model* model_load(const std::string& dir, const LoadParams& params);
void model_free(Model* model);

const ModelConfig& model_config(const Model* model);
// The backend the model runs on ("cpu", "cpu-ref", "cuda") and, when `device` was auto and
// the CPU was chosen, why no GPU was used ("" otherwise).
std::string model_backend_name(const Model* model);
std::string model_device_note(const Model* model);
// Bytes of weights the model maps (sum over all tensors it uses).
size_t model_weight_bytes(const Model* model);
// How the weight files were loaded: "map" or "read" (LoadParams::weights resolved).
std::string model_weight_storage(const Model* model);
// The dtype most of the weights have ("F32", "F16", "BF16").
std::string model_weight_dtype(const Model* model);

// Logits for a batch of independent sequences packed back to back: sequence s is
// tokens[sum(seq_lens[0..s)) .. + seq_lens[s]), positions start at 0 for each.
// logits: host buffer of [sum(seq_lens) x vocab_size] floats, row-major.
void model_forward(Model* model, const int32_t* tokens, const int32_t* seq_lens, int32_t n_seqs, float* logits);

// Generates completions for every request in one batched run (continuous batching over a paged
// KV cache with prefix sharing). The KV cache is created on first use and kept (with its prefix
// cache) for later calls.
std::vector<GenerateResult> model_generate(Model* model, const std::vector<GenerateRequest>& requests,
                                           const GenerateHooks& hooks, GenerateStats* stats);
// Validates requests without running them (throws like model_generate would).
void model_generate_validate(Model* model, const std::vector<GenerateRequest>& requests);
KvCacheStats model_kv_cache_stats(Model* model);

// --- training (LoRA + GRPO) ------------------------------------------------------------------

struct LoraConfig {
  int32_t rank = 64;
  float alpha = 64.0f;
  bool rslora = false;
  uint32_t targets = 0x7f;  // bit i: q, k, v, o, gate, up, down (PEFT's q_proj ... down_proj)
  uint64_t seed = 0;
};

// One GRPO batch: completion i (of n) follows prompt prompt_of[i]; groups of group_size
// consecutive completions share advantages' statistics. Per-token arrays are flattened over
// completions in order (completion_lens[i] entries each).
struct GrpoBatch {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int32_t> prompt_of;  // [n]
  std::vector<std::vector<int32_t>> completions;
  std::vector<float> rewards;  // [n]
  int32_t group_size = 1;
  std::string loss_type = "grpo";  // grpo | bnpo | dr_grpo
  float epsilon = 0.2f, epsilon_high = 0.2f;
  float beta = 0.0f;
  float temperature = 1.0f;
  int32_t max_completion_length = 0;    // dr_grpo's constant (0: the longest completion)
  std::string scale_rewards = "group";  // group | batch | none
  std::vector<float> old_logps;         // flattened; empty = the current log-probs (ratio 1)
  std::vector<float> ref_logps;         // flattened; empty = computed with the adapter disabled when beta > 0
  std::vector<float> advantages;        // [n]; empty = computed from rewards
};

struct GrpoResult {
  double loss = 0;
  int64_t tokens = 0;
  double clip_fraction = 0;
  double kl = 0;
  std::vector<float> logps;       // flattened per completion token
  std::vector<float> advantages;  // [n]
};

struct AdamWParams {
  float lr = 5e-6f, beta1 = 0.9f, beta2 = 0.99f, eps = 1e-8f, weight_decay = 0.1f;
  float max_grad_norm = 0.1f;  // <= 0: no clipping
};

struct AdamWResult {
  double grad_norm = 0;  // before clipping
  bool skipped = false;  // a gradient was NaN/Inf: nothing was updated
};

// Attaches a fresh trainable adapter (PEFT initialization), replacing any previous one.
void model_lora_create(Model* model, const LoraConfig& config);
bool model_lora_active(const Model* model);
void model_lora_set_enabled(Model* model, bool enabled);
std::vector<std::string> model_lora_names(Model* model);
// Shapes of a tensor by PEFT name (lora_A: [r, in], lora_B: [out, r]).
std::vector<int64_t> model_lora_shape(Model* model, const std::string& name);
// which: "weight" | "grad" | "exp_avg" | "exp_avg_sq"; n floats.
void model_lora_read(Model* model, const std::string& name, const std::string& which, float* out, size_t n);
void model_lora_write(Model* model, const std::string& name, const std::string& which, const float* in, size_t n);
int64_t model_lora_step(Model* model);
void model_lora_set_step(Model* model, int64_t step);
// Full-parameter training: every weight becomes an f32 trainable tensor under its HF name (the
// model's weights are converted in place; 16 bytes per parameter with gradients and moments).
// Refused while a LoRA adapter is attached; once on, no adapter can be created.
void model_full_enable(Model* model);
bool model_full_active(const Model* model);
std::vector<std::string> model_full_names(Model* model);
std::vector<int64_t> model_full_shape(Model* model, const std::string& name);  // 1-D or 2-D
// which: "weight" | "grad" | "exp_avg" | "exp_avg_sq"; n floats.
void model_full_read(Model* model, const std::string& name, const std::string& which, float* out, size_t n);
void model_full_write(Model* model, const std::string& name, const std::string& which, const float* in, size_t n);
int64_t model_full_step(Model* model);
// GRPO loss and the gradient of scale x loss wrt what the model trains (the full parameters when
// enabled, else the adapter). When accumulate, the gradients are added to the accumulators; when
// grads is non-null it receives this batch's gradients; with neither, only the loss is computed.
GrpoResult model_grpo_loss_and_grads(Model* model, const GrpoBatch& batch, bool accumulate, float scale,
                                     std::vector<std::pair<std::string, std::vector<float>>>* grads);
// Clips the accumulated gradients to max_grad_norm (global L2), applies AdamW (no weight decay on
// 1-D tensors: norm scales and biases), zeroes them.
AdamWResult model_optimizer_step(Model* model, const AdamWParams& params);

struct CudaDevice {
  int index = 0;
  std::string name;
  size_t total_memory = 0;
  int compute_major = 0, compute_minor = 0;
};

struct BuildInfo {
  std::string version;                // the engine version (matches package.json)
  std::vector<std::string> backends;  // compiled in: "cpu", "cuda"
  std::string simd;                   // "avx2+fma+f16c" | "scalar"
  int default_threads = 1;
  std::vector<CudaDevice> cuda_devices;
  std::string cuda_note;  // why no CUDA device is usable, when none is
};
BuildInfo build_info();

}  // namespace motif
