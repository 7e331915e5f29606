// kv-cache.h — the paged KV cache's block pool: reference counts, copy-on-write forks, and
// automatic prefix caching.
//
// The pool only manages block ids; the K/V storage itself is one backend buffer per layer of
// shape [n_blocks, block_size, Hkv, D] (owned by the Engine). A sequence holds a table of
// block ids; forking shares them (refcount + 1). A block that is full is registered under the
// hash of (its parent block's hash, its tokens); a later prompt with the same prefix reuses it.
// Blocks whose refcount drops to 0 stay cached (evictable, least-recently-used first) until
// their memory is needed. Hash hits are confirmed by comparing the stored tokens, so a hash
// collision can never hand a sequence someone else's keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

namespace motif {

class KvBlockPool {
 public:
  KvBlockPool(int32_t n_blocks, int32_t block_size);

  int32_t n_blocks() const { return int32_t(refs_.size()); }
  int32_t block_size() const { return block_size_; }
  // Blocks that allocate() can hand out now: free ones plus cached, unreferenced ones.
  int32_t n_available() const { return int32_t(free_.size() + lru_.size()); }
  int32_t refcount(int32_t block) const { return refs_[size_t(block)]; }
  // Sum of all refcounts (0 when no sequence holds a block: the leak check).
  int64_t total_refs() const;
  int32_t n_cached() const { return int32_t(by_hash_.size()); }

  // A block with refcount 1, or -1 when none is available (evicts the least recently used
  // cached block when no free one is left).
  int32_t allocate();
  void retain(int32_t block);
  void release(int32_t block);

  // The prefix-cache key of a full block: hash of the parent's key and the block's tokens.
  static uint64_t chain_hash(uint64_t parent, const int32_t* tokens, int32_t n);
  // A cached block holding exactly `tokens` after `parent`, retained for the caller; or -1.
  int32_t lookup(uint64_t hash, uint64_t parent, const int32_t* tokens);
  // Registers a full block under `hash` (no-op if the hash is already taken).
  void publish(int32_t block, uint64_t hash, uint64_t parent, const int32_t* tokens);
  // Drops every cached, unreferenced block (tests; freeing memory).
  void clear_cache();

 private:
  struct Meta {
    bool published = false;
    uint64_t hash = 0;
    uint64_t parent = 0;
    std::vector<int32_t> tokens;
    std::list<int32_t>::iterator lru_pos;
    bool in_lru = false;
  };
  void forget(int32_t block);

  int32_t block_size_;
  std::vector<int32_t> refs_;
  std::vector<Meta> meta_;
  std::vector<int32_t> free_;
  std::list<int32_t> lru_;  // cached blocks with refcount 0, least recently used first
  std::unordered_map<uint64_t, int32_t> by_hash_;
};

}  // namespace motif
