// kv-cache.cpp — the block pool declared in kv-cache.h.
#include "kv-cache.h"

#include "../core/status.h"

namespace motif {

KvBlockPool::KvBlockPool(int32_t n_blocks, int32_t block_size)
    : block_size_(block_size), refs_(size_t(n_blocks), 0), meta_(size_t(n_blocks)) {
  MOTIF_CHECK(n_blocks > 0 && block_size > 0, InvalidArgument, "KV pool needs at least one block");
  for (int32_t b = n_blocks - 1; b >= 0; b--) free_.push_back(b);
}

int64_t KvBlockPool::total_refs() const {
  int64_t n = 0;
  for (int32_t r : refs_) n += r;
  return n;
}

void KvBlockPool::forget(int32_t block) {
  Meta& m = meta_[size_t(block)];
  if (m.published) {
    auto it = by_hash_.find(m.hash);
    if (it != by_hash_.end() && it->second == block) by_hash_.erase(it);
  }
  if (m.in_lru) lru_.erase(m.lru_pos);
  m = Meta{};
}

int32_t KvBlockPool::allocate() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    b = lru_.front();  // evict the least recently used cached block
    forget(b);
  } else {
    return -1;
  }
  refs_[size_t(b)] = 1;
  return b;
}

void KvBlockPool::retain(int32_t block) {
  Meta& m = meta_[size_t(block)];
  if (refs_[size_t(block)] == 0 && m.in_lru) {
    lru_.erase(m.lru_pos);
    m.in_lru = false;
  }
  refs_[size_t(block)]++;
}

void KvBlockPool::release(int32_t block) {
  MOTIF_ASSERT(refs_[size_t(block)] > 0);
  if (--refs_[size_t(block)] > 0) return;
  Meta& m = meta_[size_t(block)];
  if (m.published) {
    lru_.push_back(block);
    m.lru_pos = std::prev(lru_.end());
    m.in_lru = true;
  } else {
    m = Meta{};
    free_.push_back(block);
  }
}

uint64_t KvBlockPool::chain_hash(uint64_t parent, const int32_t* tokens, int32_t n) {
  // FNV-1a over the parent key and the token ids, then a splitmix64 finalizer.
  uint64_t h = 1469598103934665603ull ^ parent;
  for (int32_t i = 0; i < n; i++) {
    h ^= uint32_t(tokens[i]);
    h *= 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

int32_t KvBlockPool::lookup(uint64_t hash, uint64_t parent, const int32_t* tokens) {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const int32_t b = it->second;
  const Meta& m = meta_[size_t(b)];
  if (m.parent != parent) return -1;
  for (int32_t i = 0; i < block_size_; i++)
    if (m.tokens[size_t(i)] != tokens[i]) return -1;
  retain(b);
  return b;
}

void KvBlockPool::publish(int32_t block, uint64_t hash, uint64_t parent, const int32_t* tokens) {
  Meta& m = meta_[size_t(block)];
  if (m.published || by_hash_.count(hash)) return;
  m.published = true;
  m.hash = hash;
  m.parent = parent;
  m.tokens.assign(tokens, tokens + block_size_);
  by_hash_[hash] = block;
}

void KvBlockPool::clear_cache() {
  while (!lru_.empty()) {
    const int32_t b = lru_.front();
    forget(b);
    free_.push_back(b);
  }
}

}  // namespace motif
