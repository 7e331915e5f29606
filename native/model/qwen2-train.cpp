// qwen2-train.cpp — LoRA on the projections and the training pass of the Qwen2/Llama model:
// forward with gradient checkpointing, the fused chunked LM-head log-prob + loss gradient, and
// the backward through every layer into the LoRA gradient accumulators (base weights frozen), or,
// with full-parameter training, into the gradients of every weight.
//
// Memory: the layer inputs [L+1, T, C] are kept; one layer's activations are recomputed at a
// time during backward; the LM head works on vocab chunks so [T x V] logits never exist whole.
#include <algorithm>
#include <cmath>

#include "../core/status.h"
#include "qwen2.h"

namespace motif {

namespace {
Tensor view(const Tensor& t, int64_t d0, int64_t d1, int64_t d2 = -1) {
  return make_tensor(t.type, t.data, d0, d1, d2);
}
Tensor row_block(const Tensor& t, int64_t row0, int64_t rows) {
  return make_tensor(t.type, static_cast<char*>(t.data) + size_t(row0) * size_t(t.cols()) * dtype_size(t.type), rows,
                     t.cols());
}
// Arena slots of the training pass (distinct from the inference passes' slots).
enum TrainSlot {
  kTIds = 32,
  kTPos,
  kTXs,
  kTH1,
  kTQ,
  kTK,
  kTV,
  kTAtt,
  kTO,
  kTXmid,
  kTH2,
  kTG,
  kTU,
  kTA,
  kTHn,
  kTLogits,
  kTStats,
  kTTargets,
  kTDx,
  kTDh,
  kTDq,
  kTDk,
  kTDv,
  kTDatt,
  kTDa,
  kTDg,
  kTDu,
  kTLoraTmp,
  kTLoraDtmp
};
}  // namespace

void Qwen2Model::set_lora(std::unique_ptr<LoraAdapter> a) {
  MOTIF_CHECK(!full_, InvalidArgument,
              "full-parameter training is on: this model trains all of its weights and takes no LoRA adapter");
  lora_ = std::move(a);
}

void Qwen2Model::enable_full_training() {
  if (full_) return;
  MOTIF_CHECK(!lora_, InvalidArgument,
              "the model has a LoRA adapter: full-parameter training needs a model without one (load it again)");
  std::vector<std::pair<std::string, Tensor*>> slots;
  slots.emplace_back("model.embed_tokens.weight", &embed_);
  for (size_t l = 0; l < layers_.size(); l++) {
    LayerWeights& w = layers_[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::pair<const char*, Tensor*> named[] = {
        {"input_layernorm.weight", &w.attn_norm}, {"self_attn.q_proj.weight", &w.wq},
        {"self_attn.q_proj.bias", &w.bq},         {"self_attn.k_proj.weight", &w.wk},
        {"self_attn.k_proj.bias", &w.bk},         {"self_attn.v_proj.weight", &w.wv},
        {"self_attn.v_proj.bias", &w.bv},         {"self_attn.o_proj.weight", &w.wo},
        {"self_attn.o_proj.bias", &w.bo},         {"post_attention_layernorm.weight", &w.mlp_norm},
        {"mlp.gate_proj.weight", &w.w_gate},      {"mlp.gate_proj.bias", &w.b_gate},
        {"mlp.up_proj.weight", &w.w_up},          {"mlp.up_proj.bias", &w.b_up},
        {"mlp.down_proj.weight", &w.w_down},      {"mlp.down_proj.bias", &w.b_down}};
    for (const auto& [name, slot] : named)
      if (slot->data) slots.emplace_back(p + name, slot);
  }
  slots.emplace_back("model.norm.weight", &final_norm_);
  const bool tied = lm_head_.data == embed_.data;
  if (!tied) slots.emplace_back("lm_head.weight", &lm_head_);
  full_ = std::make_unique<FullParams>(*backend_, slots);
  if (tied) lm_head_ = embed_;  // one tensor, one gradient: the LM head's and the embedding's add up
  weight_dtype_ = DType::F32;
  weight_bytes_ = 0;
  for (const auto& t : full_->tensors()) weight_bytes_ += t.w.nbytes();
}

void Qwen2Model::norm_weight_backward(const Tensor& dy, const Tensor& x, const Tensor& w) {
  if (const Tensor* g = full_grad(w)) backend_->rmsnorm_backward_weight(*g, dy, x, float(cfg_.rms_norm_eps));
}

void Qwen2Model::project(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias, int64_t layer,
                         int target, int tmp_slot) {
  backend_->matmul_forward(out, x, w, bias);
  if (LoraParam* p = active_lora(layer, target)) {
    Tensor tmp = arena_->get(tmp_slot, DType::F32, x.rows(), p->a.shape[0]);
    backend_->lora_forward(out, tmp, x, p->a, p->b, lora_->scale());
  }
}

void Qwen2Model::project_backward(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Tensor& bias, int64_t layer, int target, bool accumulate) {
  Backend& b = *backend_;
  if (const Tensor* gw = full_grad(w)) b.matmul_backward_weight(*gw, dy, x, 1.0f);
  if (const Tensor* gb = full_grad(bias)) b.bias_backward(*gb, dy);
  b.matmul_backward_input(dx, dy, w, accumulate);
  LoraParam* p = active_lora(layer, target);
  if (!p) return;
  const float s = lora_->scale();
  const int64_t T = x.rows(), r = p->a.shape[0];
  Tensor tmp = arena_->get(kTLoraTmp, DType::F32, T, r);    // x A^T, recomputed
  Tensor dtmp = arena_->get(kTLoraDtmp, DType::F32, T, r);  // d(x A^T) = s dy B
  b.matmul_forward(tmp, x, p->a, Tensor{});
  b.matmul_backward_weight(p->gb, dy, tmp, s);  // dB += s dy^T (x A^T)
  b.matmul_backward_input(dtmp, dy, p->b, false);
  b.scale_forward(dtmp, s);
  b.matmul_backward_weight(p->ga, dtmp, x, 1.0f);  // dA += dtmp^T x
  b.matmul_backward_input(dx, dtmp, p->a, true);   // dx += dtmp A
}

std::vector<float> Qwen2Model::train_pass(const TrainRows& rows, float temperature, const CoefFn* coef_fn) {
  const int64_t T = int64_t(rows.tokens.size());
  const int32_t n_seqs = int32_t(rows.seq_starts.size()) - 1;
  MOTIF_CHECK(T > 0 && n_seqs >= 1 && rows.targets.size() == size_t(T) && rows.seq_starts.back() == T, InvalidArgument,
              "train pass: malformed packed batch");
  MOTIF_CHECK(temperature > 0, InvalidArgument, "train pass: temperature must be positive");
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size, H = cfg_.n_heads, Hkv = cfg_.n_kv_heads,
                D = cfg_.head_dim, V = cfg_.vocab_size, L = int64_t(layers_.size());
  for (int64_t t = 0; t < T; t++) {
    MOTIF_CHECK(rows.tokens[size_t(t)] >= 0 && rows.tokens[size_t(t)] < V, InvalidArgument,
                "train pass: token id " + std::to_string(rows.tokens[size_t(t)]) + " is outside the vocabulary");
    MOTIF_CHECK(rows.targets[size_t(t)] >= -1 && rows.targets[size_t(t)] < V, InvalidArgument,
                "train pass: target id out of range");
  }
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int32_t s = 0; s < n_seqs; s++) {
    const int32_t len = rows.seq_starts[size_t(s) + 1] - rows.seq_starts[size_t(s)];
    MOTIF_CHECK(len >= 1 && len <= cfg_.max_position_embeddings, InvalidArgument,
                "train pass: sequence " + std::to_string(s) + " has " + std::to_string(len) +
                    " tokens (expected 1 to max_position_embeddings)");
    for (int32_t i = 0; i < len; i++) pos[size_t(rows.seq_starts[size_t(s)] + i)] = i;
  }
  Backend& b = *backend_;
  ScratchArena& a = *arena_;
  Tensor ids = a.get(kTIds, DType::I32, T), positions = a.get(kTPos, DType::I32, T);
  Tensor targets = a.get(kTTargets, DType::I32, T);
  b.upload(ids.data, rows.tokens.data(), size_t(T) * 4);
  b.upload(positions.data, pos.data(), size_t(T) * 4);
  b.upload(targets.data, rows.targets.data(), size_t(T) * 4);

  AttentionParams ap;
  ap.seq_starts = rows.seq_starts.data();
  ap.n_seqs = n_seqs;
  ap.n_heads = int32_t(H);
  ap.n_kv_heads = int32_t(Hkv);
  ap.head_dim = int32_t(D);
  ap.scale = 1.0f / std::sqrt(float(D));
  const float eps = float(cfg_.rms_norm_eps);

  // xs[l] is the input of layer l; xs[L] the final residual stream.
  Tensor xs = a.get(kTXs, DType::F32, L + 1, T, C);
  auto xs_at = [&](int64_t l) { return row_block(view(xs, (L + 1) * T, C), l * T, T); };
  Tensor h1 = a.get(kTH1, DType::F32, T, C), q = a.get(kTQ, DType::F32, T, H * D),
         k = a.get(kTK, DType::F32, T, Hkv * D);
  Tensor v = a.get(kTV, DType::F32, T, Hkv * D), att = a.get(kTAtt, DType::F32, T, H * D),
         o = a.get(kTO, DType::F32, T, C);
  Tensor xmid = a.get(kTXmid, DType::F32, T, C), h2 = a.get(kTH2, DType::F32, T, C);
  Tensor g = a.get(kTG, DType::F32, T, I), u = a.get(kTU, DType::F32, T, I), act = a.get(kTA, DType::F32, T, I);

  // One layer's forward from x_in, keeping what its backward needs in h1, q, k, v, att, xmid, h2, g, u, act.
  auto layer_forward = [&](int64_t l, const Tensor& x_in, const Tensor* x_out) {
    const LayerWeights& w = layers_[size_t(l)];
    b.rmsnorm_forward(h1, x_in, w.attn_norm, eps);
    project(q, h1, w.wq, w.bq, l, kLoraQ, kTLoraTmp);
    project(k, h1, w.wk, w.bk, l, kLoraK, kTLoraTmp);
    project(v, h1, w.wv, w.bv, l, kLoraV, kTLoraTmp);
    b.rope_forward(view(q, T, H, D), positions, inv_freq_);
    b.rope_forward(view(k, T, Hkv, D), positions, inv_freq_);
    b.attention_forward(att, q, k, v, ap);
    project(o, att, w.wo, w.bo, l, kLoraO, kTLoraTmp);
    b.add_forward(xmid, x_in, o);
    b.rmsnorm_forward(h2, xmid, w.mlp_norm, eps);
    project(g, h2, w.w_gate, w.b_gate, l, kLoraGate, kTLoraTmp);
    project(u, h2, w.w_up, w.b_up, l, kLoraUp, kTLoraTmp);
    b.swiglu_forward(act, g, u);
    if (x_out) {
      project(o, act, w.w_down, w.b_down, l, kLoraDown, kTLoraTmp);
      b.add_forward(*x_out, xmid, o);
    }
  };

  b.embedding_forward(xs_at(0), embed_, ids);
  for (int64_t l = 0; l < L; l++) {
    const Tensor out = xs_at(l + 1);
    layer_forward(l, xs_at(l), &out);
  }
  Tensor hn = a.get(kTHn, DType::F32, T, C);
  b.rmsnorm_forward(hn, xs_at(L), final_norm_, eps);

  // LM head, pass 1: online log-sum-exp over vocab chunks; the target logits.
  const float inv_temp = 1.0f / temperature;
  const int64_t vc = std::clamp<int64_t>((int64_t(32) << 20) / std::max<int64_t>(T, 1), 256, V);
  Tensor chunk = a.get(kTLogits, DType::F32, T, vc);
  Tensor stats = a.get(kTStats, DType::F32, 5, T);  // running max, running sum, target logit, lse, coef
  auto stat = [&](int64_t i) { return row_block(stats, i, 1); };
  std::vector<float> host(size_t(5 * T), 0.0f);
  for (int64_t t = 0; t < T; t++) host[size_t(t)] = -INFINITY;
  b.upload(stats.data, host.data(), host.size() * 4);
  const size_t esize = dtype_size(lm_head_.type);
  auto head_chunk = [&](int64_t v0, int64_t n) {
    Tensor e = make_tensor(lm_head_.type, static_cast<char*>(lm_head_.data) + size_t(v0) * size_t(C) * esize, n, C);
    Tensor lc = make_tensor(DType::F32, chunk.data, T, n);
    b.matmul_forward(lc, hn, e, Tensor{});
    return std::make_pair(lc, e);
  };
  for (int64_t v0 = 0; v0 < V; v0 += vc) {
    const int64_t n = std::min(vc, V - v0);
    auto [lc, e] = head_chunk(v0, n);
    b.lmhead_lse_forward(lc, v0, targets, inv_temp, view(stat(0), T, 1), view(stat(1), T, 1), view(stat(2), T, 1));
  }
  b.download(host.data(), stats.data, size_t(3 * T) * 4);
  std::vector<float> logp(static_cast<size_t>(T), 0.0f), lse(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; t++) {
    lse[size_t(t)] = host[size_t(t)] + std::log(host[size_t(T + t)]);
    if (rows.targets[size_t(t)] >= 0) logp[size_t(t)] = host[size_t(2 * T + t)] * inv_temp - lse[size_t(t)];
  }
  if (!coef_fn) return logp;

  std::vector<float> coef(static_cast<size_t>(T), 0.0f);
  (*coef_fn)(logp, coef);
  for (int64_t t = 0; t < T; t++)
    if (rows.targets[size_t(t)] < 0) coef[size_t(t)] = 0.0f;
  b.upload(stat(3).data, lse.data(), size_t(T) * 4);
  b.upload(stat(4).data, coef.data(), size_t(T) * 4);

  // LM head, pass 2: d(loss)/d(logits) chunk by chunk, folded straight into d(hn).
  Tensor dh = a.get(kTDh, DType::F32, T, C);
  std::vector<float> zeros(size_t(T * C), 0.0f);
  b.upload(dh.data, zeros.data(), zeros.size() * 4);
  for (int64_t v0 = 0; v0 < V; v0 += vc) {
    const int64_t n = std::min(vc, V - v0);
    auto [lc, e] = head_chunk(v0, n);
    b.lmhead_grad_forward(lc, v0, targets, inv_temp, view(stat(3), T, 1), view(stat(4), T, 1));
    b.matmul_backward_input(dh, lc, e, true);
    if (const Tensor* g = full_grad(lm_head_)) b.matmul_backward_weight(row_block(*g, v0, n), lc, hn, 1.0f);
  }
  Tensor dx = a.get(kTDx, DType::F32, T, C);
  b.upload(dx.data, zeros.data(), zeros.size() * 4);
  b.rmsnorm_backward(dx, dh, xs_at(L), final_norm_, eps);
  norm_weight_backward(dh, xs_at(L), final_norm_);

  // Layers in reverse: recompute the layer, then push dx (the gradient of its output) through it.
  Tensor dq = a.get(kTDq, DType::F32, T, H * D), dk = a.get(kTDk, DType::F32, T, Hkv * D);
  Tensor dv = a.get(kTDv, DType::F32, T, Hkv * D), datt = a.get(kTDatt, DType::F32, T, H * D);
  Tensor da = a.get(kTDa, DType::F32, T, I), dg = a.get(kTDg, DType::F32, T, I), du = a.get(kTDu, DType::F32, T, I);
  for (int64_t l = L - 1; l >= 0; l--) {
    const LayerWeights& w = layers_[size_t(l)];
    const Tensor x_in = xs_at(l);
    layer_forward(l, x_in, nullptr);
    // MLP: out = xmid + down(silu(gate(h2)) * up(h2)); dx flows to xmid directly.
    project_backward(da, dx, act, w.w_down, w.b_down, l, kLoraDown, false);
    b.swiglu_backward(dg, du, da, g, u);
    project_backward(dh, dg, h2, w.w_gate, w.b_gate, l, kLoraGate, false);
    project_backward(dh, du, h2, w.w_up, w.b_up, l, kLoraUp, true);
    b.rmsnorm_backward(dx, dh, xmid, w.mlp_norm, eps);  // dx is now d(xmid)
    norm_weight_backward(dh, xmid, w.mlp_norm);
    // Attention: xmid = x_in + o_proj(attention(rope(q), rope(k), v)).
    project_backward(datt, dx, att, w.wo, w.bo, l, kLoraO, false);
    b.attention_backward(view(dq, T, H, D), view(dk, T, Hkv, D), view(dv, T, Hkv, D), datt, view(q, T, H, D),
                         view(k, T, Hkv, D), view(v, T, Hkv, D), ap);
    b.rope_backward(view(dq, T, H, D), positions, inv_freq_);
    b.rope_backward(view(dk, T, Hkv, D), positions, inv_freq_);
    project_backward(dh, dq, h1, w.wq, w.bq, l, kLoraQ, false);
    project_backward(dh, dk, h1, w.wk, w.bk, l, kLoraK, true);
    project_backward(dh, dv, h1, w.wv, w.bv, l, kLoraV, true);
    b.rmsnorm_backward(dx, dh, x_in, w.attn_norm, eps);  // dx is now d(x_in)
    norm_weight_backward(dh, x_in, w.attn_norm);
  }
  if (const Tensor* g = full_grad(embed_)) b.embedding_backward(*g, dx, ids);
  b.synchronize();
  return logp;
}

}  // namespace motif
