// sampler.h — choosing the next token from a row of logits: greedy, temperature, top-k, top-p,
// min-p, with counter-based seeded randomness.
//
// Order (as vLLM applies them): temperature scales the logits; top-k keeps the k most likely;
// top-p keeps the smallest most-likely set whose mass reaches top_p of what top-k kept;
// min-p keeps tokens with probability >= min_p * (the largest probability). The token is drawn
// from what is kept, renormalized. Ties are broken toward the lower token id.
//
// The log-prob returned is that of the chosen token under the temperature-scaled distribution
// *before* truncation (GRPO's importance ratio needs it); at temperature 0 (greedy) it is the
// plain log-softmax. The uniform draw comes from (seed, stream, counter) alone, so a sequence's
// tokens do not depend on what else is in the batch, or on preemption and recompute.
#pragma once

#include <cstdint>
#include <vector>

#include "../include/motif.h"

namespace motif {

struct SampledToken {
  int32_t token = -1;
  float logprob = 0.0f;
};

// A uniform double in [0, 1) determined by (seed, stream, counter).
double sampler_uniform(uint64_t seed, uint64_t stream, uint64_t counter);

// Reusable per-thread buffers for sample_token.
struct SamplerScratch {
  std::vector<float> probs;
  std::vector<int32_t> order;
  std::vector<double> bucket_mass;  // top-p without a full sort (see sampler.cpp)
  std::vector<int32_t> bucket_count;
};

// Chooses a token from logits[V] with the uniform draw u in [0, 1).
SampledToken sample_token(const float* logits, int32_t V, const SamplingParams& p, double u, SamplerScratch& scratch);

// The same choice by sorting the whole kept set: the plain reference test-sampling holds the
// bucketed top-p path of sample_token to.
SampledToken sample_token_sorted(const float* logits, int32_t V, const SamplingParams& p, double u,
                                 SamplerScratch& scratch);

}  // namespace motif
