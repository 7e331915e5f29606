// sampler.cpp — the token sampler declared in sampler.h.
#include "sampler.h"

#include <algorithm>
#include <cmath>

namespace motif {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

double sampler_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  const uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ counter);
  return double(h >> 11) * (1.0 / 9007199254740992.0);  // 53 random bits
}

SampledToken sample_token(const float* logits, int32_t V, const SamplingParams& p, double u, SamplerScratch& scratch) {
  // The maximum (first one on ties): the greedy choice, and the softmax shift.
  int32_t best = 0;
  for (int32_t i = 1; i < V; i++)
    if (logits[i] > logits[best]) best = i;
  const float mx = logits[best];
  const bool greedy = p.temperature <= 0.0f;
  const double inv_t = greedy ? 1.0 : 1.0 / double(p.temperature);

  std::vector<float>& probs = scratch.probs;  // unnormalized: exp((l - max) / T), the max is 1
  probs.resize(size_t(V));
  double sum = 0.0;
  for (int32_t i = 0; i < V; i++) {
    probs[size_t(i)] = float(std::exp(double(logits[i] - mx) * inv_t));
    sum += probs[size_t(i)];
  }
  auto logprob_of = [&](int32_t tok) { return float(double(logits[tok] - mx) * inv_t - std::log(sum)); };
  if (greedy) return {best, logprob_of(best)};

  const int32_t k = (p.top_k > 0 && p.top_k < V) ? p.top_k : V;
  const bool use_top_p = p.top_p < 1.0f;
  std::vector<int32_t>& order = scratch.order;
  int32_t n_kept = V;
  bool sorted = false;
  const auto by_prob = [&](int32_t a, int32_t b) {
    return probs[size_t(a)] > probs[size_t(b)] || (probs[size_t(a)] == probs[size_t(b)] && a < b);
  };
  if (k < V || use_top_p) {
    order.resize(size_t(V));
    for (int32_t i = 0; i < V; i++) order[size_t(i)] = i;
    // Sort only as much as needed: the top k, or for top-p a growing prefix until it holds the mass.
    double mass_k = 0.0;
    if (k < V) {
      std::partial_sort(order.begin(), order.begin() + k, order.end(), by_prob);
      for (int32_t i = 0; i < k; i++) mass_k += probs[size_t(order[size_t(i)])];
      n_kept = k;
    } else {
      mass_k = sum;
    }
    if (use_top_p) {
      const double target = double(p.top_p) * mass_k;
      int32_t m = std::min(n_kept, 256);
      for (;;) {
        if (k == V) std::partial_sort(order.begin(), order.begin() + m, order.end(), by_prob);
        double cum = 0.0;
        int32_t cut = -1;
        for (int32_t i = 0; i < m; i++) {
          cum += probs[size_t(order[size_t(i)])];
          if (cum >= target) {
            cut = i + 1;
            break;
          }
        }
        if (cut > 0) {
          n_kept = cut;
          break;
        }
        if (m == n_kept) break;  // rounding left the target just out of reach: keep everything
        m = std::min(n_kept, m * 8);
      }
    }
    sorted = true;
  }
  // min-p: probabilities relative to the maximum, which is 1 here.
  const float min_keep = p.min_p > 0.0f ? p.min_p : 0.0f;

  double kept = 0.0;
  if (sorted) {
    int32_t n = 0;
    for (; n < n_kept; n++) {
      const float pr = probs[size_t(order[size_t(n)])];
      if (pr < min_keep) break;  // sorted descending: everything after is smaller
      kept += pr;
    }
    n_kept = std::max(n, 1);
    if (n == 0) kept = probs[size_t(order[0])];
    double target = u * kept, cum = 0.0;
    for (int32_t i = 0; i < n_kept; i++) {
      cum += probs[size_t(order[size_t(i)])];
      if (target < cum) return {order[size_t(i)], logprob_of(order[size_t(i)])};
    }
    return {order[size_t(n_kept - 1)], logprob_of(order[size_t(n_kept - 1)])};
  }
  for (int32_t i = 0; i < V; i++)
    if (probs[size_t(i)] >= min_keep) kept += probs[size_t(i)];
  double target = u * kept, cum = 0.0;
  int32_t last = best;
  for (int32_t i = 0; i < V; i++) {
    if (probs[size_t(i)] < min_keep) continue;
    cum += probs[size_t(i)];
    last = i;
    if (target < cum) return {i, logprob_of(i)};
  }
  return {last, logprob_of(last)};
}

}  // namespace motif
