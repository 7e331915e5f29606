// grpo.cpp — TRL's GRPO loss over a batch of completions, on top of Qwen2Model::train_pass.
//
// Per completion token: ratio = exp(logp - old_logp); per-token loss =
//   -min(ratio * A, clamp(ratio, 1 - eps, 1 + eps_high) * A) + beta * (exp(ref - logp) - (ref - logp) - 1)
// aggregated as 'grpo' (mean over sequences of the per-sequence token mean), 'bnpo' (mean over
// all tokens) or 'dr_grpo' (sum / (sequences x max_completion_length)). Advantages per group of
// group_size: (r - mean) / (std + 1e-4) with the unbiased std ('group': the group's, 'batch': the
// whole batch's), or r - mean ('none'). The gradient wrt logp is what train_pass backpropagates.
// lossType 'sft' is supervised fine-tuning on the same path: the mean negative log-likelihood of
// the completion tokens (rewards, advantages, ratios, clipping and beta play no part).
#include "grpo.h"

#include <cmath>

#include "../core/status.h"

namespace motif {

std::vector<float> grpo_advantages(const std::vector<float>& rewards, int32_t group_size, const std::string& scale) {
  const size_t n = rewards.size();
  MOTIF_CHECK(
      group_size >= 1 && n % size_t(group_size) == 0, InvalidArgument,
      "groupSize " + std::to_string(group_size) + " must divide the number of completions (" + std::to_string(n) + ")");
  MOTIF_CHECK(scale == "group" || scale == "batch" || scale == "none", InvalidArgument,
              "scaleRewards must be 'group', 'batch' or 'none', got '" + scale + "'");
  auto unbiased_std = [](const float* r, size_t m, double mean) {
    if (m < 2) return std::nan("");  // torch.std of one element is NaN
    double s = 0;
    for (size_t i = 0; i < m; i++) s += (r[i] - mean) * (r[i] - mean);
    return std::sqrt(s / double(m - 1));
  };
  double batch_mean = 0;
  for (float r : rewards) batch_mean += r;
  batch_mean /= double(n);
  const double batch_std = unbiased_std(rewards.data(), n, batch_mean);
  std::vector<float> adv(n);
  for (size_t g0 = 0; g0 < n; g0 += size_t(group_size)) {
    double mean = 0;
    for (size_t i = 0; i < size_t(group_size); i++) mean += rewards[g0 + i];
    mean /= double(group_size);
    const double sd = scale == "group" ? unbiased_std(rewards.data() + g0, size_t(group_size), mean) : batch_std;
    for (size_t i = 0; i < size_t(group_size); i++) {
      const double centered = rewards[g0 + i] - mean;
      adv[g0 + i] = float(scale == "none" ? centered : centered / (sd + 1e-4));
    }
  }
  return adv;
}

GrpoResult grpo_loss_and_grads(Qwen2Model& model, const GrpoBatch& batch, float grad_scale, bool backward) {
  const size_t n = batch.completions.size();
  MOTIF_CHECK(n >= 1, InvalidArgument, "the batch has no completions");
  MOTIF_CHECK(batch.prompt_of.size() == n && batch.rewards.size() == n, InvalidArgument,
              "rewards and prompts must have one entry per completion");
  const bool sft = batch.loss_type == "sft";
  MOTIF_CHECK(sft || batch.loss_type == "grpo" || batch.loss_type == "bnpo" || batch.loss_type == "dr_grpo",
              InvalidArgument, "lossType must be 'grpo', 'bnpo', 'dr_grpo' or 'sft', got '" + batch.loss_type + "'");
  MOTIF_CHECK(batch.epsilon >= 0 && batch.epsilon_high >= 0 && batch.beta >= 0 && batch.temperature > 0,
              InvalidArgument, "epsilon, epsilonHigh and beta must be >= 0 and temperature > 0");

  // Pack prompt + completion per completion; loss rows are those that predict completion tokens.
  Qwen2Model::TrainRows rows;
  rows.seq_starts.push_back(0);
  std::vector<int64_t> first_row(n);  // row predicting completion token 0
  int64_t total_tokens = 0, longest = 0;
  for (size_t i = 0; i < n; i++) {
    MOTIF_CHECK(batch.prompt_of[i] >= 0 && size_t(batch.prompt_of[i]) < batch.prompts.size(), InvalidArgument,
                "completion " + std::to_string(i) + " refers to a missing prompt");
    const auto& p = batch.prompts[size_t(batch.prompt_of[i])];
    const auto& c = batch.completions[i];
    MOTIF_CHECK(!p.empty() && !c.empty(), InvalidArgument,
                "completion " + std::to_string(i) + ": prompts and completions must not be empty");
    const int64_t start = int64_t(rows.tokens.size());
    rows.tokens.insert(rows.tokens.end(), p.begin(), p.end());
    rows.tokens.insert(rows.tokens.end(), c.begin(), c.end());
    rows.targets.resize(rows.tokens.size(), -1);
    first_row[i] = start + int64_t(p.size()) - 1;
    for (size_t j = 0; j < c.size(); j++) rows.targets[size_t(first_row[i]) + j] = c[j];
    rows.seq_starts.push_back(int32_t(rows.tokens.size()));
    total_tokens += int64_t(c.size());
    longest = std::max<int64_t>(longest, int64_t(c.size()));
  }
  auto check_flat = [&](const std::vector<float>& v, const char* what) {
    MOTIF_CHECK(v.empty() || int64_t(v.size()) == total_tokens, InvalidArgument,
                std::string(what) + " must have one value per completion token (" + std::to_string(total_tokens) +
                    "), got " + std::to_string(v.size()));
  };
  check_flat(batch.old_logps, "oldLogps");
  check_flat(batch.ref_logps, "refLogps");

  GrpoResult res;
  res.tokens = total_tokens;
  if (sft) {
    res.advantages.assign(n, 0.0f);
  } else if (!batch.advantages.empty()) {
    MOTIF_CHECK(batch.advantages.size() == n, InvalidArgument, "advantages must have one value per completion");
    res.advantages = batch.advantages;
  } else {
    res.advantages = grpo_advantages(batch.rewards, batch.group_size, batch.scale_rewards);
  }
  const double max_len = batch.max_completion_length > 0 ? double(batch.max_completion_length) : double(longest);

  // Reference log-probs: the adapter disabled (only needed, and only computed, when beta > 0).
  std::vector<float> ref_rows;
  if (!sft && batch.beta > 0 && batch.ref_logps.empty()) {
    const bool was = model.lora_enabled();
    model.set_lora_enabled(false);
    try {
      ref_rows = model.train_pass(rows, batch.temperature, nullptr);
    } catch (...) {
      model.set_lora_enabled(was);
      throw;
    }
    model.set_lora_enabled(was);
  }

  // Walks every completion token: (completion i, token j, batch row).
  auto for_tokens = [&](const std::function<void(size_t, size_t, size_t, size_t)>& fn) {
    size_t flat = 0;
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < batch.completions[i].size(); j++, flat++) fn(i, j, size_t(first_row[i]) + j, flat);
  };
  const float lo = 1.0f - batch.epsilon, hi = 1.0f + batch.epsilon_high;
  double loss = 0, kl_sum = 0, clipped = 0;
  Qwen2Model::CoefFn coef_fn = [&](const std::vector<float>& logp, std::vector<float>& coef) {
    loss = kl_sum = clipped = 0;
    for_tokens([&](size_t i, size_t, size_t row, size_t flat) {
      const double lp = logp[row];
      if (sft) {  // mean negative log-likelihood over every completion token
        const double w = 1.0 / double(total_tokens);
        loss -= w * lp;
        coef[row] = float(-w * grad_scale);
        return;
      }
      const double old = batch.old_logps.empty() ? lp : double(batch.old_logps[flat]);
      const double A = res.advantages[i];
      const double ratio = std::exp(lp - old);
      const double clamped = std::min(std::max(ratio, double(lo)), double(hi));
      const double u1 = ratio * A, u2 = clamped * A;
      double tok_loss = -std::min(u1, u2);
      double dtok = u1 <= u2 ? -A * ratio : 0.0;  // ties (unclipped) pass the ratio's gradient
      if ((ratio < lo && A < 0) || (ratio > hi && A > 0)) clipped += 1;
      if (batch.beta > 0) {
        const double ref = batch.ref_logps.empty() ? double(ref_rows[row]) : double(batch.ref_logps[flat]);
        const double kl = std::exp(ref - lp) - (ref - lp) - 1.0;
        tok_loss += batch.beta * kl;
        dtok += batch.beta * (1.0 - std::exp(ref - lp));
        kl_sum += kl;
      }
      double w;
      if (batch.loss_type == "grpo")
        w = 1.0 / (double(n) * double(batch.completions[i].size()));
      else if (batch.loss_type == "bnpo")
        w = 1.0 / double(total_tokens);
      else
        w = 1.0 / (double(n) * max_len);
      loss += w * tok_loss;
      coef[row] = float(w * dtok * grad_scale);
    });
  };
  const std::vector<float> logp = model.train_pass(rows, batch.temperature, backward ? &coef_fn : nullptr);
  if (!backward) {
    std::vector<float> unused(logp.size());
    coef_fn(logp, unused);
  }
  res.loss = loss;
  res.kl = total_tokens ? kl_sum / double(total_tokens) : 0;
  res.clip_fraction = total_tokens ? clipped / double(total_tokens) : 0;
  res.logps.resize(size_t(total_tokens));
  for_tokens([&](size_t, size_t, size_t row, size_t flat) { res.logps[flat] = logp[row]; });
  return res;
}

}  // namespace motif
