// qwen2.cpp — loading the weights of a Qwen2/Llama folder and the batched forward pass.
#include "qwen2.h"

#include <algorithm>
#include <cmath>

#include "../core/status.h"

namespace motif {
namespace {

Tensor reshape(Tensor t, int64_t d0, int64_t d1, int64_t d2 = -1) { return make_tensor(t.type, t.data, d0, d1, d2); }

}  // namespace

ScratchArena::~ScratchArena() {
  for (auto& b : bufs_)
    if (b.first) backend_.release(b.first);
}

Tensor ScratchArena::get(int slot, DType type, int64_t d0, int64_t d1, int64_t d2) {
  if (bufs_.size() <= size_t(slot)) bufs_.resize(size_t(slot) + 1, {nullptr, 0});
  Tensor t = make_tensor(type, nullptr, d0, d1, d2);
  const size_t bytes = std::max<size_t>(t.nbytes(), 64);
  auto& b = bufs_[size_t(slot)];
  if (b.second < bytes) {
    if (b.first) backend_.release(b.first);
    b.first = nullptr;
    const size_t grown = std::max(bytes, b.second + b.second / 2);
    b.first = backend_.alloc(grown);
    b.second = grown;
  }
  t.data = b.first;
  return t;
}

Tensor Qwen2Model::load(const std::string& name, const std::vector<int64_t>& shape) {
  Tensor host = store_.get(name, shape);
  weight_bytes_ += host.nbytes();
  return backend_->adopt_weight(host);
}

Tensor Qwen2Model::load_optional(bool present, const std::string& name, const std::vector<int64_t>& shape) {
  return present ? load(name, shape) : Tensor{};
}

Qwen2Model::Qwen2Model(const std::string& dir, std::unique_ptr<Backend> backend, FileLoad how)
    : backend_(std::move(backend)) {
  if (!path_is_dir(dir)) {
    throw Error(ErrorCode::Io, path_exists(dir) ? dir + " is not a folder (expected a HuggingFace model folder)"
                                                : "model folder " + dir + " does not exist");
  }
  cfg_ = config_load(dir);
  store_.open_dir(dir, how);
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size, H = cfg_.n_heads, Hkv = cfg_.n_kv_heads,
                D = cfg_.head_dim, V = cfg_.vocab_size;
  embed_ = load("model.embed_tokens.weight", {V, C});
  weight_dtype_ = embed_.type;
  for (int64_t l = 0; l < cfg_.n_layers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights w;
    w.attn_norm = load(p + "input_layernorm.weight", {C});
    w.wq = load(p + "self_attn.q_proj.weight", {H * D, C});
    w.wk = load(p + "self_attn.k_proj.weight", {Hkv * D, C});
    w.wv = load(p + "self_attn.v_proj.weight", {Hkv * D, C});
    w.wo = load(p + "self_attn.o_proj.weight", {C, H * D});
    w.bq = load_optional(cfg_.qkv_bias, p + "self_attn.q_proj.bias", {H * D});
    w.bk = load_optional(cfg_.qkv_bias, p + "self_attn.k_proj.bias", {Hkv * D});
    w.bv = load_optional(cfg_.qkv_bias, p + "self_attn.v_proj.bias", {Hkv * D});
    w.bo = load_optional(cfg_.o_bias, p + "self_attn.o_proj.bias", {C});
    w.mlp_norm = load(p + "post_attention_layernorm.weight", {C});
    w.w_gate = load(p + "mlp.gate_proj.weight", {I, C});
    w.w_up = load(p + "mlp.up_proj.weight", {I, C});
    w.w_down = load(p + "mlp.down_proj.weight", {C, I});
    w.b_gate = load_optional(cfg_.mlp_bias, p + "mlp.gate_proj.bias", {I});
    w.b_up = load_optional(cfg_.mlp_bias, p + "mlp.up_proj.bias", {I});
    w.b_down = load_optional(cfg_.mlp_bias, p + "mlp.down_proj.bias", {C});
    layers_.push_back(w);
  }
  final_norm_ = load("model.norm.weight", {C});
  // Some tied checkpoints still carry an lm_head copy; tie_word_embeddings decides.
  lm_head_ = cfg_.tie_word_embeddings ? embed_ : load("lm_head.weight", {V, C});

  arena_ = std::make_unique<ScratchArena>(*backend_);
  const std::vector<float> inv = rope_inv_freq(cfg_);
  inv_freq_ = make_tensor(DType::F32, nullptr, int64_t(inv.size()));
  inv_freq_buf_ = backend_->alloc(inv.size() * sizeof(float));
  inv_freq_.data = inv_freq_buf_;
  backend_->upload(inv_freq_buf_, inv.data(), inv.size() * sizeof(float));
}

Qwen2Model::~Qwen2Model() {
  arena_.reset();
  if (inv_freq_buf_) backend_->release(inv_freq_buf_);
}

void Qwen2Model::forward(const int32_t* tokens, const int32_t* seq_lens, int32_t n_seqs, float* logits) {
  MOTIF_CHECK(n_seqs >= 1, InvalidArgument, "forward: need at least one sequence");
  std::vector<int32_t> starts(size_t(n_seqs) + 1, 0);
  for (int32_t s = 0; s < n_seqs; s++) {
    MOTIF_CHECK(seq_lens[s] >= 1, InvalidArgument, "forward: sequence " + std::to_string(s) + " is empty");
    MOTIF_CHECK(seq_lens[s] <= cfg_.max_position_embeddings, InvalidArgument,
                "forward: sequence " + std::to_string(s) + " has " + std::to_string(seq_lens[s]) +
                    " tokens, more than max_position_embeddings (" + std::to_string(cfg_.max_position_embeddings) +
                    ")");
    starts[size_t(s) + 1] = starts[size_t(s)] + seq_lens[s];
  }
  const int64_t T = starts[size_t(n_seqs)];
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size, H = cfg_.n_heads, Hkv = cfg_.n_kv_heads,
                D = cfg_.head_dim, V = cfg_.vocab_size;
  for (int64_t t = 0; t < T; t++)
    MOTIF_CHECK(tokens[t] >= 0 && tokens[t] < V, InvalidArgument,
                "token id " + std::to_string(tokens[t]) + " at index " + std::to_string(t) + " is outside [0, " +
                    std::to_string(V) + ")");

  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int32_t s = 0; s < n_seqs; s++)
    for (int32_t i = 0; i < seq_lens[s]; i++) pos[size_t(starts[size_t(s)] + i)] = i;

  Backend& b = *backend_;
  // Reused buffers: a fresh allocation per call costs a page fault per 4 KiB touched.
  ScratchArena& mem = *arena_;
  enum Slot { kIds, kPos, kX, kH, kO, kQ, kK, kV, kA, kG, kU, kLogitChunk, kLoraTmp };
  Tensor ids = mem.get(kIds, DType::I32, T);
  Tensor positions = mem.get(kPos, DType::I32, T);
  b.upload(ids.data, tokens, size_t(T) * 4);
  b.upload(positions.data, pos.data(), size_t(T) * 4);

  Tensor x = mem.get(kX, DType::F32, T, C), h = mem.get(kH, DType::F32, T, C), o = mem.get(kO, DType::F32, T, C);
  Tensor q = mem.get(kQ, DType::F32, T, H * D), k = mem.get(kK, DType::F32, T, Hkv * D);
  Tensor v = mem.get(kV, DType::F32, T, Hkv * D), a = mem.get(kA, DType::F32, T, H * D);
  Tensor g = mem.get(kG, DType::F32, T, I), u = mem.get(kU, DType::F32, T, I);

  AttentionParams ap;
  ap.seq_starts = starts.data();
  ap.n_seqs = n_seqs;
  ap.n_heads = int32_t(H);
  ap.n_kv_heads = int32_t(Hkv);
  ap.head_dim = int32_t(D);
  ap.scale = 1.0f / std::sqrt(float(D));
  const float eps = float(cfg_.rms_norm_eps);

  b.embedding_forward(x, embed_, ids);
  for (size_t l = 0; l < layers_.size(); l++) {
    const LayerWeights& w = layers_[l];
    b.rmsnorm_forward(h, x, w.attn_norm, eps);
    project(q, h, w.wq, w.bq, int64_t(l), kLoraQ, kLoraTmp);
    project(k, h, w.wk, w.bk, int64_t(l), kLoraK, kLoraTmp);
    project(v, h, w.wv, w.bv, int64_t(l), kLoraV, kLoraTmp);
    b.rope_forward(reshape(q, T, H, D), positions, inv_freq_);
    b.rope_forward(reshape(k, T, Hkv, D), positions, inv_freq_);
    b.attention_forward(a, q, k, v, ap);
    project(o, a, w.wo, w.bo, int64_t(l), kLoraO, kLoraTmp);
    b.add_forward(x, x, o);
    b.rmsnorm_forward(h, x, w.mlp_norm, eps);
    project(g, h, w.w_gate, w.b_gate, int64_t(l), kLoraGate, kLoraTmp);
    project(u, h, w.w_up, w.b_up, int64_t(l), kLoraUp, kLoraTmp);
    b.swiglu_forward(g, g, u);
    project(o, g, w.w_down, w.b_down, int64_t(l), kLoraDown, kLoraTmp);
    b.add_forward(x, x, o);
  }
  b.rmsnorm_forward(h, x, final_norm_, eps);

  // LM head in chunks of tokens so backend scratch stays small; results land in `logits`.
  constexpr int64_t kChunk = 64;
  Tensor chunk = mem.get(kLogitChunk, DType::F32, std::min(T, kChunk), V);
  for (int64_t t0 = 0; t0 < T; t0 += kChunk) {
    const int64_t tn = std::min(kChunk, T - t0);
    Tensor hx = make_tensor(DType::F32, h.as<float>() + t0 * C, tn, C);
    Tensor out = make_tensor(DType::F32, chunk.data, tn, V);
    b.matmul_forward(out, hx, lm_head_, Tensor{});
    b.download(logits + t0 * V, chunk.data, size_t(tn * V) * sizeof(float));
  }
  b.synchronize();
}

}  // namespace motif

namespace motif {

void Qwen2Model::forward_step(const StepBatch& batch, const KvStorage& kv, float* logits) {
  const int64_t T = int64_t(batch.tokens.size());
  MOTIF_ASSERT(T > 0 && batch.positions.size() == size_t(T) && batch.slots.size() == size_t(T) &&
               batch.row_seq.size() == size_t(T));
  MOTIF_ASSERT(batch.block_tables.size() == size_t(batch.n_seqs) * size_t(batch.max_blocks));
  const int64_t C = cfg_.hidden_size, I = cfg_.intermediate_size, H = cfg_.n_heads, Hkv = cfg_.n_kv_heads,
                D = cfg_.head_dim, V = cfg_.vocab_size;
  Backend& b = *backend_;
  ScratchArena& a = *arena_;
  enum Slot {
    kIds,
    kPos,
    kSlots,
    kRowSeq,
    kTables,
    kLogitRows,
    kX,
    kH,
    kO,
    kQ,
    kK,
    kV,
    kA,
    kG,
    kU,
    kHo,
    kLogits,
    kLoraTmp
  };
  Tensor ids = a.get(kIds, DType::I32, T);
  Tensor positions = a.get(kPos, DType::I32, T);
  Tensor slots = a.get(kSlots, DType::I32, T);
  Tensor row_seq = a.get(kRowSeq, DType::I32, T);
  Tensor tables = a.get(kTables, DType::I32, batch.n_seqs, batch.max_blocks);
  b.upload(ids.data, batch.tokens.data(), size_t(T) * 4);
  b.upload(positions.data, batch.positions.data(), size_t(T) * 4);
  b.upload(slots.data, batch.slots.data(), size_t(T) * 4);
  b.upload(row_seq.data, batch.row_seq.data(), size_t(T) * 4);
  b.upload(tables.data, batch.block_tables.data(), batch.block_tables.size() * 4);

  Tensor x = a.get(kX, DType::F32, T, C), h = a.get(kH, DType::F32, T, C), o = a.get(kO, DType::F32, T, C);
  Tensor q = a.get(kQ, DType::F32, T, H * D), k = a.get(kK, DType::F32, T, Hkv * D);
  Tensor v = a.get(kV, DType::F32, T, Hkv * D), att = a.get(kA, DType::F32, T, H * D);
  Tensor g = a.get(kG, DType::F32, T, I), u = a.get(kU, DType::F32, T, I);

  PagedAttentionParams pp;
  pp.n_heads = int32_t(H);
  pp.n_kv_heads = int32_t(Hkv);
  pp.head_dim = int32_t(D);
  pp.block_size = kv.block_size;
  pp.scale = 1.0f / std::sqrt(float(D));
  const float eps = float(cfg_.rms_norm_eps);

  b.embedding_forward(x, embed_, ids);
  for (size_t l = 0; l < layers_.size(); l++) {
    const LayerWeights& w = layers_[l];
    b.rmsnorm_forward(h, x, w.attn_norm, eps);
    project(q, h, w.wq, w.bq, int64_t(l), kLoraQ, kLoraTmp);
    project(k, h, w.wk, w.bk, int64_t(l), kLoraK, kLoraTmp);
    project(v, h, w.wv, w.bv, int64_t(l), kLoraV, kLoraTmp);
    b.rope_forward(reshape(q, T, H, D), positions, inv_freq_);
    b.rope_forward(reshape(k, T, Hkv, D), positions, inv_freq_);
    b.kv_store_forward(kv.k[l], kv.v[l], reshape(k, T, Hkv, D), reshape(v, T, Hkv, D), slots);
    b.paged_attention_forward(att, reshape(q, T, H, D), kv.k[l], kv.v[l], tables, row_seq, positions, pp);
    project(o, att, w.wo, w.bo, int64_t(l), kLoraO, kLoraTmp);
    b.add_forward(x, x, o);
    b.rmsnorm_forward(h, x, w.mlp_norm, eps);
    project(g, h, w.w_gate, w.b_gate, int64_t(l), kLoraGate, kLoraTmp);
    project(u, h, w.w_up, w.b_up, int64_t(l), kLoraUp, kLoraTmp);
    b.swiglu_forward(g, g, u);
    project(o, g, w.w_down, w.b_down, int64_t(l), kLoraDown, kLoraTmp);
    b.add_forward(x, x, o);
  }
  const int64_t n_out = int64_t(batch.logit_rows.size());
  if (n_out == 0) return;
  // Only the rows that sample go through the final norm and the LM head.
  Tensor rows = a.get(kLogitRows, DType::I32, n_out);
  b.upload(rows.data, batch.logit_rows.data(), size_t(n_out) * 4);
  Tensor hsel = a.get(kHo, DType::F32, n_out, C);
  b.embedding_forward(hsel, x, rows);  // gather rows of x
  Tensor hn = reshape(o, n_out, C);
  b.rmsnorm_forward(hn, hsel, final_norm_, eps);
  Tensor out = a.get(kLogits, DType::F32, n_out, V);
  b.matmul_forward(out, hn, lm_head_, Tensor{});
  b.download(logits, out.data, size_t(n_out * V) * sizeof(float));
  b.synchronize();
}

}  // namespace motif
