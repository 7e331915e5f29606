// sampler.cpp — the token sampler declared in sampler.h.
//
// Top-p (with no top-k and no min-p, MOTIF's continuation settings) avoids sorting the
// vocabulary: the probabilities, all in (0, 1], are binned by the high bits of their float
// representation (monotonic in the value, 1/128 of an octave per bin), the bins are walked from
// the top to find the one where the mass reaches top_p, and only that bin's tokens are sorted;
// the draw then walks the bins the same way and sorts only the bin it lands in. The kept set and
// the walk order are those of the full sort (probability descending, then token id), so the
// result is sample_token_sorted's up to the order of float additions.
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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

namespace {

constexpr uint32_t kOneBits = 0x3F800000u;  // 1.0f: the largest probability (the max is exp(0))
constexpr int kBucketShift = 16;
constexpr int32_t kBuckets = int32_t(kOneBits >> kBucketShift) + 1;

// Bin of a probability in (0, 1] (0 included): 0 for 1.0, growing as the value shrinks.
inline int32_t bucket_of(float prob) {
  uint32_t bits;
  std::memcpy(&bits, &prob, sizeof bits);
  return int32_t((kOneBits - std::min(bits, kOneBits)) >> kBucketShift);
}

// Indices of the tokens in bin b, sorted by probability descending, then id.
void sorted_bucket(const std::vector<float>& probs, int32_t V, int32_t b, std::vector<int32_t>& out) {
  out.clear();
  for (int32_t i = 0; i < V; i++)
    if (bucket_of(probs[size_t(i)]) == b) out.push_back(i);
  std::sort(out.begin(), out.end(), [&](int32_t x, int32_t y) {
    return probs[size_t(x)] > probs[size_t(y)] || (probs[size_t(x)] == probs[size_t(y)] && x < y);
  });
}

}  // namespace

SampledToken sample_token(const float* logits, int32_t V, const SamplingParams& p, double u, SamplerScratch& scratch) {
  const bool bucketed = p.temperature > 0.0f && p.top_p < 1.0f && !(p.top_k > 0 && p.top_k < V) && !(p.min_p > 0.0f);
  if (!bucketed) return sample_token_sorted(logits, V, p, u, scratch);
  int32_t best = 0;
  for (int32_t i = 1; i < V; i++)
    if (logits[i] > logits[best]) best = i;
  const float mx = logits[best];
  const double inv_t = 1.0 / double(p.temperature);
  std::vector<float>& probs = scratch.probs;
  probs.resize(size_t(V));
  std::vector<double>& mass = scratch.bucket_mass;
  std::vector<int32_t>& count = scratch.bucket_count;
  mass.assign(size_t(kBuckets), 0.0);
  count.assign(size_t(kBuckets), 0);
  double sum = 0.0;
  for (int32_t i = 0; i < V; i++) {
    const float pr = float(std::exp(double(logits[i] - mx) * inv_t));
    probs[size_t(i)] = pr;
    sum += pr;
    const int32_t b = bucket_of(pr);
    mass[size_t(b)] += pr;
    count[size_t(b)]++;
  }
  auto logprob_of = [&](int32_t tok) { return float(double(logits[tok] - mx) * inv_t - std::log(sum)); };

  // The cut: whole bins above `edge`, then the first `n_edge` tokens of bin `edge` (sorted).
  const double target = double(p.top_p) * sum;
  double above = 0.0;
  int32_t edge = -1;
  for (int32_t b = 0; b < kBuckets; b++) {
    if (count[size_t(b)] == 0) continue;
    if (above + mass[size_t(b)] >= target) {
      edge = b;
      break;
    }
    above += mass[size_t(b)];
  }
  std::vector<int32_t>& edge_tokens = scratch.order;
  int32_t n_edge = 0;
  double kept = above;
  if (edge < 0) {  // rounding left the target just out of reach: keep everything
    edge = kBuckets;
    kept = above;
  } else {
    sorted_bucket(probs, V, edge, edge_tokens);
    for (int32_t tok : edge_tokens) {
      kept += probs[size_t(tok)];
      n_edge++;
      if (kept >= target) break;
    }
  }

  // The draw: walk the kept bins from the top; sort only the bin the target lands in.
  const double draw = u * kept;
  double cum = 0.0;
  for (int32_t b = 0; b < edge && b < kBuckets; b++) {
    if (count[size_t(b)] == 0) continue;
    if (cum + mass[size_t(b)] > draw) {
      std::vector<int32_t> toks;
      sorted_bucket(probs, V, b, toks);
      for (int32_t tok : toks) {
        cum += probs[size_t(tok)];
        if (draw < cum) return {tok, logprob_of(tok)};
      }
      return {toks.back(), logprob_of(toks.back())};  // rounding: the bin's last token
    }
    cum += mass[size_t(b)];
  }
  for (int32_t i = 0; i < n_edge; i++) {
    cum += probs[size_t(edge_tokens[size_t(i)])];
    if (draw < cum) return {edge_tokens[size_t(i)], logprob_of(edge_tokens[size_t(i)])};
  }
  if (n_edge > 0) return {edge_tokens[size_t(n_edge - 1)], logprob_of(edge_tokens[size_t(n_edge - 1)])};
  // Everything kept and the draw ran off the end by rounding: the smallest kept token.
  return sample_token_sorted(logits, V, p, u, scratch);
}

SampledToken sample_token_sorted(const float* logits, int32_t V, const SamplingParams& p, double u,
                                 SamplerScratch& scratch) {
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
