// backend-cpu.cpp — the CPU backend: host memory, and each op routed to ref:: or fast::.
//
// use_ref (BackendOptions, or MOTIF_CPU_REF=1 in the environment) selects the plain
// reference loops of ref.cpp for every op; otherwise the threaded/SIMD paths of fast.cpp.
#include <cstdlib>
#include <cstring>
#include <new>

#include "../../core/status.h"
#include "ops-cpu.h"

namespace motif {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& opts)
      : use_ref_(opts.use_ref), pool_(opts.n_threads > 0 ? opts.n_threads : ThreadPool::default_threads()) {}

  std::string name() const override { return use_ref_ ? "cpu-ref" : "cpu"; }

  void* alloc(size_t bytes) override {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    MOTIF_CHECK(p != nullptr, OutOfMemory, "cpu: could not allocate " + std::to_string(bytes) + " bytes");
    return p;
  }
  void release(void* ptr) override { std::free(ptr); }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  Tensor adopt_weight(const Tensor& host) override { return host; }

  void embedding_forward(const Tensor& out, const Tensor& table, const Tensor& ids) override {
    use_ref_ ? ref::embedding_forward(out, table, ids) : fast::embedding_forward(pool_, out, table, ids);
  }
  void rmsnorm_forward(const Tensor& out, const Tensor& x, const Tensor& w, float eps) override {
    use_ref_ ? ref::rmsnorm_forward(out, x, w, eps) : fast::rmsnorm_forward(pool_, out, x, w, eps);
  }
  void matmul_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias) override {
    use_ref_ ? ref::matmul_forward(out, x, w, bias) : fast::matmul_forward(pool_, out, x, w, bias);
  }
  void rope_forward(const Tensor& x, const Tensor& pos, const Tensor& inv_freq) override {
    use_ref_ ? ref::rope_forward(x, pos, inv_freq) : fast::rope_forward(pool_, x, pos, inv_freq);
  }
  void attention_forward(const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v,
                         const AttentionParams& p) override {
    use_ref_ ? ref::attention_forward(out, q, k, v, p) : fast::attention_forward(pool_, out, q, k, v, p);
  }
  void swiglu_forward(const Tensor& out, const Tensor& gate, const Tensor& up) override {
    use_ref_ ? ref::swiglu_forward(out, gate, up) : fast::swiglu_forward(pool_, out, gate, up);
  }
  void add_forward(const Tensor& out, const Tensor& a, const Tensor& b) override {
    use_ref_ ? ref::add_forward(out, a, b) : fast::add_forward(pool_, out, a, b);
  }
  void kv_store_forward(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                        const Tensor& slots) override {
    use_ref_ ? ref::kv_store_forward(k_cache, v_cache, k, v, slots)
             : fast::kv_store_forward(pool_, k_cache, v_cache, k, v, slots);
  }
  void paged_attention_forward(const Tensor& out, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                               const Tensor& block_tables, const Tensor& row_seq, const Tensor& row_pos,
                               const PagedAttentionParams& p) override {
    use_ref_ ? ref::paged_attention_forward(out, q, k_cache, v_cache, block_tables, row_seq, row_pos, p)
             : fast::paged_attention_forward(pool_, out, q, k_cache, v_cache, block_tables, row_seq, row_pos, p);
  }

 private:
  bool use_ref_;
  ThreadPool pool_;
};

}  // namespace

std::unique_ptr<Backend> backend_cpu_create(const BackendOptions& opts) {
  BackendOptions o = opts;
  const char* env = std::getenv("MOTIF_CPU_REF");
  if (env && std::strcmp(env, "1") == 0) o.use_ref = true;
  return std::make_unique<CpuBackend>(o);
}

const char* cpu_simd_level() {
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  return "avx2+fma+f16c";
#else
  return "scalar";
#endif
}

}  // namespace motif
