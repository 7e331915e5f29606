// test-sampling.cpp — the sampler on small hand-computed distributions.
//
// Frequencies are measured with stratified draws u = (i + 0.5) / N, so a sampler that keeps the
// right set of tokens with the right (renormalized) probabilities matches the expected table to
// within 1/N; expected tables are worked out by hand below each case.
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "../../native/model/sampler.h"

using namespace motif;

static int g_passed = 0, g_failed = 0;

static void check(bool ok, const std::string& what) {
  ok ? g_passed++ : g_failed++;
  if (!ok) std::printf("FAIL: %s\n", what.c_str());
}

// Frequencies of each token over N stratified draws.
static std::vector<double> frequencies(const std::vector<float>& logits, const SamplingParams& p, int N = 20000) {
  SamplerScratch scratch;
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < N; i++) {
    const SampledToken t = sample_token(logits.data(), int32_t(logits.size()), p, (i + 0.5) / N, scratch);
    f[size_t(t.token)] += 1.0 / N;
  }
  return f;
}

static void expect_freq(const std::string& name, const std::vector<float>& logits, const SamplingParams& p,
                        const std::vector<double>& want) {
  const auto got = frequencies(logits, p);
  double worst = 0;
  for (size_t i = 0; i < want.size(); i++) worst = std::max(worst, std::fabs(got[i] - want[i]));
  check(worst < 1e-3, name + " (worst frequency error " + std::to_string(worst) + ")");
}

int main() {
  // Probabilities 0.1, 0.2, 0.3, 0.4 (as logits: their logs).
  const std::vector<float> p4 = {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};
  SamplingParams base;

  // Greedy: the largest logit; ties to the lower id; log-prob = plain log-softmax.
  {
    SamplerScratch s;
    SamplingParams g;
    g.temperature = 0;
    const std::vector<float> l = {1, 3, 2};
    const SampledToken t = sample_token(l.data(), 3, g, 0.99, s);
    check(t.token == 1, "greedy picks the max");
    const double lp = 3.0 - std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0));
    check(std::fabs(t.logprob - lp) < 1e-6, "greedy log-prob is the log-softmax");
    const std::vector<float> tie = {2, 2, 1};
    check(sample_token(tie.data(), 3, g, 0.5, s).token == 0, "greedy breaks ties toward the lower id");
  }

  // Temperature 1, no truncation: the distribution itself.
  expect_freq("temperature 1", p4, base, {0.1, 0.2, 0.3, 0.4});

  // Temperature 0.5 squares the probabilities: 0.01, 0.04, 0.09, 0.16 over 0.30.
  {
    SamplingParams t = base;
    t.temperature = 0.5f;
    expect_freq("temperature 0.5", p4, t, {0.01 / 0.3, 0.04 / 0.3, 0.09 / 0.3, 0.16 / 0.3});
    SamplerScratch s;
    const SampledToken tok = sample_token(p4.data(), 4, t, 0.999, s);
    check(tok.token == 3, "the last stratum picks the largest token");
    // log-prob under the temperature-scaled distribution: log(0.16 / 0.30)
    check(std::fabs(tok.logprob - std::log(0.16 / 0.30)) < 1e-5, "log-prob at temperature 0.5");
  }

  // top-k 2: keeps 0.4 and 0.3, renormalized to 4/7 and 3/7.
  {
    SamplingParams t = base;
    t.top_k = 2;
    expect_freq("top-k 2", p4, t, {0, 0, 3.0 / 7, 4.0 / 7});
    // The log-prob is still that of the untruncated distribution: log 0.3 for token 2.
    SamplerScratch s;
    const SampledToken tok = sample_token(p4.data(), 4, t, 0.99, s);
    check(tok.token == 2 && std::fabs(tok.logprob - std::log(0.3)) < 1e-5, "top-k keeps the untruncated log-prob");
  }

  // top-p 0.5: 0.4 < 0.5, 0.4 + 0.3 >= 0.5, so {0.4, 0.3}. top-p 0.4: {0.4} alone.
  {
    SamplingParams t = base;
    t.top_p = 0.5f;
    expect_freq("top-p 0.5", p4, t, {0, 0, 3.0 / 7, 4.0 / 7});
    t.top_p = 0.4f;
    expect_freq("top-p 0.4", p4, t, {0, 0, 0, 1});
    t.top_p = 0.95f;  // needs all four: 0.4+0.3+0.2 = 0.9 < 0.95
    expect_freq("top-p 0.95", p4, t, {0.1, 0.2, 0.3, 0.4});
  }

  // top-k 3 then top-p 0.8 of what top-k kept (0.9): target 0.72; 0.4+0.3 = 0.7 < 0.72, so {0.4, 0.3, 0.2}.
  {
    SamplingParams t = base;
    t.top_k = 3;
    t.top_p = 0.8f;
    expect_freq("top-k 3 + top-p 0.8", p4, t, {0, 0.2 / 0.9, 0.3 / 0.9, 0.4 / 0.9});
  }

  // min-p 0.6: threshold 0.6 * 0.4 = 0.24 keeps 0.3 and 0.4.
  {
    SamplingParams t = base;
    t.min_p = 0.6f;
    expect_freq("min-p 0.6", p4, t, {0, 0, 3.0 / 7, 4.0 / 7});
    t.min_p = 0.4f;  // 0.16 keeps 0.2, 0.3, 0.4
    expect_freq("min-p 0.4", p4, t, {0, 0.2 / 0.9, 0.3 / 0.9, 0.4 / 0.9});
  }

  // A flat vocabulary of 1000 with top-p 0.5 keeps 500 tokens (ties broken toward lower ids).
  {
    const std::vector<float> flat(1000, 0.0f);
    SamplingParams t = base;
    t.top_p = 0.5f;
    const auto f = frequencies(flat, t, 100000);
    double low = 0, high = 0;
    for (int i = 0; i < 500; i++) low += f[size_t(i)];
    for (int i = 500; i < 1000; i++) high += f[size_t(i)];
    check(std::fabs(low - 1.0) < 1e-9 && high == 0.0, "flat top-p 0.5 keeps the first 500 ids");
  }

  // The uniform draws: deterministic, distinct per stream and counter, mean 1/2.
  {
    check(sampler_uniform(7, 1, 2) == sampler_uniform(7, 1, 2), "uniform is deterministic");
    check(sampler_uniform(7, 1, 2) != sampler_uniform(7, 2, 2) &&
              sampler_uniform(7, 1, 2) != sampler_uniform(7, 1, 3) &&
              sampler_uniform(7, 1, 2) != sampler_uniform(8, 1, 2),
          "uniform depends on seed, stream and counter");
    double mean = 0;
    bool in_range = true;
    for (int i = 0; i < 100000; i++) {
      const double u = sampler_uniform(42, 0, uint64_t(i));
      in_range = in_range && u >= 0 && u < 1;
      mean += u / 100000;
    }
    check(in_range && std::fabs(mean - 0.5) < 0.005, "uniform draws are in [0,1) with mean 1/2");
  }

  // Top-p without a full sort (bins of probabilities) picks exactly what sorting the whole kept
  // set picks: random vocabularies of several shapes (peaked, spread, flat with ties, the
  // near-uniform logits of a random model), several top-p and temperatures, random draws.
  {
    uint64_t state = 12345;
    auto next = [&] {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return double(state >> 11) * (1.0 / 9007199254740992.0);
    };
    int mismatches = 0, trials = 0;
    for (const int32_t V : {7, 300, 5000, 40000})
      for (const double spread : {0.05, 1.0, 4.0, 12.0})
        for (const float top_p : {0.3f, 0.9f, 0.95f, 0.999f})
          for (const float temp : {0.7f, 1.0f}) {
            std::vector<float> logits(static_cast<size_t>(V));
            for (auto& l : logits) l = float(spread * (next() * 2 - 1));
            if (spread < 0.1)  // ties: a few repeated values
              for (auto& l : logits) l = std::round(l * 40) / 40;
            SamplingParams t = base;
            t.top_p = top_p;
            t.temperature = temp;
            SamplerScratch a, b;
            for (int k = 0; k < 25; k++, trials++) {
              const double u = next();
              const SampledToken x = sample_token(logits.data(), V, t, u, a);
              const SampledToken y = sample_token_sorted(logits.data(), V, t, u, b);
              if (x.token != y.token || x.logprob != y.logprob) mismatches++;
            }
          }
    check(mismatches == 0, "bucketed top-p equals the full sort (" + std::to_string(mismatches) + " of " +
                               std::to_string(trials) + " draws differ)");
  }

  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
