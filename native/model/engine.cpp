// engine.cpp — the continuous-batching scheduler and generate loop declared in engine.h.
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <unordered_set>

#include "../core/status.h"

namespace motif {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Abort: return "abort";
  }
  return "?";
}

namespace {

// A default KV budget: a quarter of the memory available now, between 64 MiB and 4 GiB.
size_t default_kv_bytes() {
  size_t avail = 0;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  size_t value;
  std::string unit;
  while (meminfo >> key >> value >> unit) {
    if (key == "MemAvailable:") {
      avail = value * 1024;
      break;
    }
  }
  if (avail == 0) avail = size_t(4) << 30;
  return std::clamp<size_t>(avail / 4, size_t(64) << 20, size_t(4) << 30);
}

// A sequence of the engine: a request's shared prompt (completion == -1, until it forks) or
// one of its completions.
struct Seq {
  int64_t id = 0;  // creation order: lower runs first, higher is preempted first
  int32_t request = 0;
  int32_t completion = -1;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int32_t n_prompt = 0;
  int32_t n_computed = 0;        // leading tokens whose K/V are in the cache
  std::vector<int32_t> blocks;   // block table
  std::vector<uint64_t> hashes;  // prefix-cache keys of the leading full blocks
  std::vector<float> logprobs;   // one per generated token
  bool done = false;
};

// The part of a sequence computed in one step.
struct StepEntry {
  Seq* seq;
  int32_t begin, end;  // token positions [begin, end)
  int32_t out_row;     // row of the step's logits, or -1
};

}  // namespace

Engine::Engine(Qwen2Model& model, const EngineConfig& config)
    : model_(model),
      cfg_(config),
      sample_pool_(config.n_threads > 0 ? config.n_threads : ThreadPool::default_threads()) {
  const ModelConfig& c = model.config();
  MOTIF_CHECK(cfg_.block_size >= 1 && cfg_.block_size <= 1024, InvalidArgument, "block size must be in [1, 1024]");
  MOTIF_CHECK(cfg_.max_step_tokens >= 1, InvalidArgument, "max_step_tokens must be positive");
  const size_t per_block =
      size_t(c.n_layers) * 2 * size_t(cfg_.block_size) * size_t(c.n_kv_heads) * size_t(c.head_dim) * sizeof(float);
  // The default budget is also capped at 16Ki blocks (256Ki tokens at 16 a block): small models
  // would otherwise get millions of blocks they never use.
  const size_t bytes = cfg_.kv_cache_bytes ? cfg_.kv_cache_bytes : std::min(default_kv_bytes(), per_block * 16384);
  const size_t n_blocks = bytes / per_block;
  MOTIF_CHECK(n_blocks >= 1, InvalidArgument,
              "kvCacheBytes " + std::to_string(bytes) + " is smaller than one KV block of this model (" +
                  std::to_string(per_block) + " bytes)");
  MOTIF_CHECK(n_blocks < (size_t(1) << 30), InvalidArgument, "kvCacheBytes is too large");
  pool_ = std::make_unique<KvBlockPool>(int32_t(n_blocks), cfg_.block_size);
  kv_bytes_ = n_blocks * per_block;
  kv_.block_size = cfg_.block_size;
  Backend& b = model_.backend();
  for (int64_t l = 0; l < c.n_layers; l++) {
    for (int kv = 0; kv < 2; kv++) {
      Tensor t = make_tensor(DType::F32, nullptr, int64_t(n_blocks), cfg_.block_size, c.n_kv_heads, c.head_dim);
      t.data = b.alloc(t.nbytes());
      kv_buffers_.push_back(t.data);
      (kv == 0 ? kv_.k : kv_.v).push_back(t);
    }
  }
  scratch_.resize(size_t(sample_pool_.n_threads()));
}

Engine::~Engine() {
  for (void* p : kv_buffers_) model_.backend().release(p);
}

void Engine::validate(const GenerateRequest& r, size_t index) const {
  const ModelConfig& c = model_.config();
  const std::string where = "request " + std::to_string(index) + ": ";
  MOTIF_CHECK(!r.prompt.empty(), InvalidArgument, where + "the prompt is empty");
  for (size_t i = 0; i < r.prompt.size(); i++)
    MOTIF_CHECK(r.prompt[i] >= 0 && r.prompt[i] < c.vocab_size, InvalidArgument,
                where + "prompt token " + std::to_string(i) + " = " + std::to_string(r.prompt[i]) + " is outside [0, " +
                    std::to_string(c.vocab_size) + ")");
  MOTIF_CHECK(r.n >= 1 && r.n <= 65536, InvalidArgument, where + "n must be in [1, 65536]");
  MOTIF_CHECK(r.max_tokens >= 1, InvalidArgument, where + "maxTokens must be at least 1");
  MOTIF_CHECK(std::isfinite(r.sampling.temperature) && r.sampling.temperature >= 0, InvalidArgument,
              where + "temperature must be >= 0");
  MOTIF_CHECK(r.sampling.top_p > 0 && r.sampling.top_p <= 1, InvalidArgument, where + "topP must be in (0, 1]");
  MOTIF_CHECK(r.sampling.top_k >= 0, InvalidArgument, where + "topK must be >= 0");
  MOTIF_CHECK(r.sampling.min_p >= 0 && r.sampling.min_p <= 1, InvalidArgument, where + "minP must be in [0, 1]");
  for (int32_t t : r.stop)
    MOTIF_CHECK(t >= 0 && t < c.vocab_size, InvalidArgument,
                where + "stop token " + std::to_string(t) + " is not a token id");
  const int64_t total = int64_t(r.prompt.size()) + r.max_tokens;
  MOTIF_CHECK(total <= c.max_position_embeddings, InvalidArgument,
              where + "prompt (" + std::to_string(r.prompt.size()) + ") + maxTokens (" + std::to_string(r.max_tokens) +
                  ") exceeds the model's max_position_embeddings (" + std::to_string(c.max_position_embeddings) + ")");
  const int64_t blocks = (total + pool_->block_size() - 1) / pool_->block_size();
  MOTIF_CHECK(blocks <= pool_->n_blocks(), InvalidArgument,
              where + "a completion of " + std::to_string(total) + " tokens needs " + std::to_string(blocks) +
                  " KV blocks but the cache holds " + std::to_string(pool_->n_blocks()) + " (" +
                  std::to_string(kv_bytes_ >> 20) + " MiB); raise kvCacheBytes or lower maxTokens");
}

std::vector<GenerateResult> Engine::generate(const std::vector<GenerateRequest>& requests, const GenerateHooks& hooks,
                                             GenerateStats* stats_out) {
  for (size_t i = 0; i < requests.size(); i++) validate(requests[i], i);
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  GenerateStats stats;
  const int32_t BS = pool_->block_size();
  const int32_t V = int32_t(model_.config().vocab_size);
  KvBlockPool& pool = *pool_;
  Backend& backend = model_.backend();
  const ModelConfig& mc = model_.config();
  const size_t kv_row_bytes = size_t(mc.n_kv_heads) * size_t(mc.head_dim) * sizeof(float);
  // Root of every prefix-cache hash chain: the weights this call runs with (base model or a given
  // adapter state), so blocks computed under other weights are never matched.
  const uint64_t root = model_.weights_version();

  std::vector<GenerateResult> results(requests.size());
  std::vector<std::unique_ptr<Seq>> seqs;
  int64_t next_id = 0;
  for (size_t i = 0; i < requests.size(); i++) {
    results[i].completions.resize(size_t(requests[i].n));
    auto s = std::make_unique<Seq>();
    s->id = next_id++;
    s->request = int32_t(i);
    s->tokens = requests[i].prompt;
    s->n_prompt = int32_t(requests[i].prompt.size());
    stats.prompt_tokens += s->n_prompt;
    seqs.push_back(std::move(s));
  }

  auto release_blocks = [&](Seq& s) {
    for (int32_t b : s.blocks) pool.release(b);
    s.blocks.clear();
    s.hashes.clear();
    s.n_computed = 0;
  };
  // Blocks `s` must newly take to hold positions [n_computed, end).
  auto blocks_needed = [&](const Seq& s, int32_t end) {
    const int32_t have = int32_t(s.blocks.size());
    int32_t n = std::max(0, (end + BS - 1) / BS - have);
    const int32_t bi = s.n_computed / BS;
    if (s.n_computed % BS != 0 && bi < have && pool.refcount(s.blocks[size_t(bi)]) > 1) n++;  // copy-on-write
    return n;
  };
  // Takes the blocks for positions [n_computed, end): copy-on-write of a shared partial block,
  // then fresh blocks. The caller made sure enough are available.
  auto take_blocks = [&](Seq& s, int32_t end) {
    const int32_t bi = s.n_computed / BS, off = s.n_computed % BS;
    if (off != 0 && bi < int32_t(s.blocks.size()) && pool.refcount(s.blocks[size_t(bi)]) > 1) {
      const int32_t old = s.blocks[size_t(bi)];
      const int32_t fresh = pool.allocate();
      MOTIF_ASSERT(fresh >= 0);
      for (size_t l = 0; l < kv_.k.size(); l++) {
        const size_t from = size_t(old) * size_t(BS) * kv_row_bytes, to = size_t(fresh) * size_t(BS) * kv_row_bytes;
        backend.copy(static_cast<char*>(kv_.k[l].data) + to, static_cast<char*>(kv_.k[l].data) + from,
                     size_t(off) * kv_row_bytes);
        backend.copy(static_cast<char*>(kv_.v[l].data) + to, static_cast<char*>(kv_.v[l].data) + from,
                     size_t(off) * kv_row_bytes);
      }
      pool.release(old);
      s.blocks[size_t(bi)] = fresh;
    }
    while (int32_t(s.blocks.size()) * BS < end) {
      const int32_t b = pool.allocate();
      MOTIF_ASSERT(b >= 0);
      s.blocks.push_back(b);
    }
  };
  auto finish = [&](Seq& s, FinishReason why) {
    Completion& c = results[size_t(s.request)].completions[size_t(s.completion)];
    c.tokens.assign(s.tokens.begin() + s.n_prompt, s.tokens.end());
    c.logprobs = s.logprobs;
    c.finish = why;
    release_blocks(s);
    s.done = true;
  };
  // Publishes the sequence's newly completed full blocks to the prefix cache.
  auto publish = [&](Seq& s) {
    const int32_t full = s.n_computed / BS;
    for (int32_t bi = int32_t(s.hashes.size()); bi < full; bi++) {
      const uint64_t parent = bi == 0 ? root : s.hashes[size_t(bi - 1)];
      const uint64_t h = KvBlockPool::chain_hash(parent, s.tokens.data() + size_t(bi) * BS, BS);
      pool.publish(s.blocks[size_t(bi)], h, parent, s.tokens.data() + size_t(bi) * BS);
      s.hashes.push_back(h);
    }
  };

  std::vector<float> logits;
  std::vector<StepEntry> entries;
  StepBatch batch;
  while (true) {
    seqs.erase(std::remove_if(seqs.begin(), seqs.end(), [](const std::unique_ptr<Seq>& s) { return s->done; }),
               seqs.end());
    if (seqs.empty()) break;
    if (hooks.abort && hooks.abort->load()) {
      for (auto& s : seqs) {
        if (s->completion >= 0) {
          finish(*s, FinishReason::Abort);
        } else {
          for (auto& c : results[size_t(s->request)].completions) c.finish = FinishReason::Abort;
          release_blocks(*s);
          s->done = true;
        }
      }
      break;
    }

    // --- schedule: decode rows first, then prefill chunks within the step's token budget ---------
    std::vector<Seq*> decoding, prefilling;
    for (auto& s : seqs) {
      const bool dec = s->completion >= 0 && int32_t(s->tokens.size()) - s->n_computed == 1;
      (dec ? decoding : prefilling).push_back(s.get());
    }
    auto preempt_newest = [&](const Seq* keep) {
      Seq* victim = nullptr;
      for (auto& s : seqs)
        if (s.get() != keep && !s->blocks.empty() && (!victim || s->id > victim->id)) victim = s.get();
      if (!victim) return false;
      release_blocks(*victim);
      stats.preemptions++;
      decoding.erase(std::remove(decoding.begin(), decoding.end(), victim), decoding.end());
      if (std::find(prefilling.begin(), prefilling.end(), victim) == prefilling.end()) {
        prefilling.push_back(victim);
        std::sort(prefilling.begin(), prefilling.end(), [](Seq* a, Seq* b) { return a->id < b->id; });
      }
      return true;
    };
    auto decode_need = [&] {
      int32_t n = 0;
      for (Seq* s : decoding) n += blocks_needed(*s, s->n_computed + 1);
      return n;
    };
    while (decode_need() > pool.n_available())
      if (!preempt_newest(nullptr)) throw Error(ErrorCode::Internal, "KV pool exhausted with nothing to preempt");

    entries.clear();
    int32_t rows = 0, out_rows = 0;
    for (Seq* s : decoding) {
      take_blocks(*s, s->n_computed + 1);
      entries.push_back({s, s->n_computed, s->n_computed + 1, out_rows++});
      rows++;
    }
    int32_t budget = cfg_.max_step_tokens - rows;
    std::unordered_set<uint64_t> inflight;  // first blocks being computed this step (dedup of shared prefixes)
    bool has_prefill = false;
    for (Seq* s : prefilling) {
      if (budget <= 0) break;
      const int32_t len = int32_t(s->tokens.size());
      if (s->n_computed == 0 && s->blocks.empty()) {
        // Prefix cache: reuse full blocks that lie wholly before the last token.
        uint64_t parent = root;
        for (int32_t bi = 0; (bi + 1) * BS <= len - 1; bi++) {
          const int32_t* toks = s->tokens.data() + size_t(bi) * BS;
          const uint64_t h = KvBlockPool::chain_hash(parent, toks, BS);
          const int32_t b = pool.lookup(h, parent, toks);
          if (b < 0) break;
          s->blocks.push_back(b);
          s->hashes.push_back(h);
          s->n_computed += BS;
          stats.cached_tokens += BS;
          parent = h;
        }
      }
      const int32_t bi = s->n_computed / BS;
      if (s->n_computed % BS == 0 && (bi + 1) * BS <= len) {
        const uint64_t parent = bi == 0 ? root : s->hashes[size_t(bi - 1)];
        const uint64_t key = KvBlockPool::chain_hash(parent, s->tokens.data() + size_t(bi) * BS, BS);
        if (!inflight.insert(key).second) continue;  // another sequence computes this block now: wait for it
      }
      int32_t end = std::min(len, s->n_computed + budget);
      if (blocks_needed(*s, end) > pool.n_available()) {
        if (rows > 0) break;  // let running work finish and free memory first
        while (blocks_needed(*s, end) > pool.n_available())
          if (!preempt_newest(s)) break;
        if (blocks_needed(*s, end) > pool.n_available()) {
          end = s->n_computed + std::max(1, (pool.n_available() - (s->n_computed % BS ? 1 : 0)) * BS);
          end = std::min(end, len);
          if (blocks_needed(*s, end) > pool.n_available())
            throw Error(ErrorCode::Internal, "KV pool cannot hold the next prefill chunk");
        }
      }
      take_blocks(*s, end);
      entries.push_back({s, s->n_computed, end, end == len ? out_rows++ : -1});
      rows += end - s->n_computed;
      budget -= end - s->n_computed;
      stats.prefill_tokens += end - s->n_computed;
      has_prefill = true;
    }
    MOTIF_ASSERT(rows > 0);

    // --- build and run the step ------------------------------------------------------------------
    batch.tokens.clear();
    batch.positions.clear();
    batch.slots.clear();
    batch.row_seq.clear();
    batch.logit_rows.assign(size_t(out_rows), 0);
    batch.n_seqs = int32_t(entries.size());
    batch.max_blocks = 1;
    for (const auto& e : entries) batch.max_blocks = std::max(batch.max_blocks, int32_t(e.seq->blocks.size()));
    batch.block_tables.assign(size_t(batch.n_seqs) * size_t(batch.max_blocks), -1);
    for (size_t i = 0; i < entries.size(); i++) {
      const StepEntry& e = entries[i];
      std::copy(e.seq->blocks.begin(), e.seq->blocks.end(), batch.block_tables.begin() + long(i) * batch.max_blocks);
      for (int32_t p = e.begin; p < e.end; p++) {
        batch.tokens.push_back(e.seq->tokens[size_t(p)]);
        batch.positions.push_back(p);
        batch.slots.push_back(e.seq->blocks[size_t(p / BS)] * BS + p % BS);
        batch.row_seq.push_back(int32_t(i));
      }
      if (e.out_row >= 0) batch.logit_rows[size_t(e.out_row)] = int32_t(batch.tokens.size()) - 1;
    }
    logits.resize(size_t(out_rows) * size_t(V));
    const auto t_step = clock::now();
    model_.forward_step(batch, kv_, logits.data());
    if (has_prefill) stats.prefill_seconds += std::chrono::duration<double>(clock::now() - t_step).count();
    stats.steps++;

    for (const auto& e : entries) {
      e.seq->n_computed = e.end;
      publish(*e.seq);
    }

    // --- sample: one task per draw (a finished prompt draws n first tokens) -------------------------
    struct Draw {
      Seq* seq;
      int32_t out_row;
      int32_t completion;
      SampledToken result;
    };
    std::vector<Draw> draws;
    for (const auto& e : entries) {
      if (e.out_row < 0) continue;
      if (e.seq->completion < 0) {
        for (int32_t c = 0; c < requests[size_t(e.seq->request)].n; c++) draws.push_back({e.seq, e.out_row, c, {}});
      } else {
        draws.push_back({e.seq, e.out_row, e.seq->completion, {}});
      }
    }
    sample_pool_.parallel_for(int64_t(draws.size()), [&](int64_t i, int thread) {
      Draw& d = draws[size_t(i)];
      const GenerateRequest& r = requests[size_t(d.seq->request)];
      const uint64_t counter = d.seq->completion < 0 ? 0 : uint64_t(d.seq->tokens.size()) - uint64_t(d.seq->n_prompt);
      const double u = sampler_uniform(r.sampling.seed, uint64_t(d.completion), counter);
      d.result =
          sample_token(logits.data() + size_t(d.out_row) * size_t(V), V, r.sampling, u, scratch_[size_t(thread)]);
    });

    // --- apply: append tokens, fork prompts into completions, finish what is done -----------------
    auto accept = [&](Seq& s, const SampledToken& tok) {
      const GenerateRequest& r = requests[size_t(s.request)];
      s.tokens.push_back(tok.token);
      s.logprobs.push_back(tok.logprob);
      stats.generated_tokens++;
      if (hooks.on_token) hooks.on_token(s.request, s.completion, tok.token, tok.logprob);
      if (std::find(r.stop.begin(), r.stop.end(), tok.token) != r.stop.end())
        finish(s, FinishReason::Stop);
      else if (int32_t(s.logprobs.size()) >= r.max_tokens)
        finish(s, FinishReason::Length);
    };
    std::vector<std::unique_ptr<Seq>> forked;
    for (const Draw& d : draws) {
      Seq& s = *d.seq;
      if (s.completion >= 0) {
        accept(s, d.result);
        continue;
      }
      auto child = std::make_unique<Seq>();
      child->id = next_id++;
      child->request = s.request;
      child->completion = d.completion;
      child->tokens = s.tokens;
      child->n_prompt = s.n_prompt;
      child->n_computed = s.n_computed;
      child->blocks = s.blocks;
      child->hashes = s.hashes;
      for (int32_t b : child->blocks) pool.retain(b);
      accept(*child, d.result);
      forked.push_back(std::move(child));
    }
    for (const auto& e : entries)
      if (e.seq->completion < 0 && e.out_row >= 0) {
        release_blocks(*e.seq);
        e.seq->done = true;
      }
    for (auto& c : forked)
      if (!c->done) seqs.push_back(std::move(c));
    if (hooks.on_step) hooks.on_step();
  }

  stats.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
  if (stats_out) *stats_out = stats;
  return results;
}

}  // namespace motif
