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
  void lora_forward(const Tensor& out, const Tensor& tmp, const Tensor& x, const Tensor& a, const Tensor& b,
                    float scale) override {
    use_ref_ ? ref::lora_forward(out, tmp, x, a, b, scale) : fast::lora_forward(pool_, out, tmp, x, a, b, scale);
  }
  void matmul_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, bool accumulate) override {
    use_ref_ ? ref::matmul_backward_input(dx, dy, w, accumulate)
             : fast::matmul_backward_input(pool_, dx, dy, w, accumulate);
  }
  void matmul_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, float scale) override {
    use_ref_ ? ref::matmul_backward_weight(dw, dy, x, scale) : fast::matmul_backward_weight(pool_, dw, dy, x, scale);
  }
  // The remaining training ops are cheap next to the matmuls: the reference loops serve both modes.
  void rmsnorm_backward(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& w, float eps) override {
    ref::rmsnorm_backward(dx, dy, x, w, eps);
  }
  void rmsnorm_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, float eps) override {
    ref::rmsnorm_backward_weight(dw, dy, x, eps);
  }
  void bias_backward(const Tensor& db, const Tensor& dy) override { ref::bias_backward(db, dy); }
  void embedding_backward(const Tensor& dtable, const Tensor& dx, const Tensor& ids) override {
    ref::embedding_backward(dtable, dx, ids);
  }
  void rope_backward(const Tensor& dx, const Tensor& pos, const Tensor& inv_freq) override {
    ref::rope_backward(dx, pos, inv_freq);
  }
  void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                          const Tensor& k, const Tensor& v, const AttentionParams& p) override {
    ref::attention_backward(dq, dk, dv, dout, q, k, v, p);
  }
  void swiglu_backward(const Tensor& dgate, const Tensor& dup, const Tensor& dout, const Tensor& gate,
                       const Tensor& up) override {
    ref::swiglu_backward(dgate, dup, dout, gate, up);
  }
  void lmhead_lse_forward(const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp,
                          const Tensor& running_max, const Tensor& running_sum, const Tensor& target_logit) override {
    use_ref_ ? ref::lmhead_lse_forward(logits, v0, targets, inv_temp, running_max, running_sum, target_logit)
             : fast::lmhead_lse_forward(pool_, logits, v0, targets, inv_temp, running_max, running_sum, target_logit);
  }
  void lmhead_grad_forward(const Tensor& logits, int64_t v0, const Tensor& targets, float inv_temp, const Tensor& lse,
                           const Tensor& coef) override {
    use_ref_ ? ref::lmhead_grad_forward(logits, v0, targets, inv_temp, lse, coef)
             : fast::lmhead_grad_forward(pool_, logits, v0, targets, inv_temp, lse, coef);
  }
  void scale_forward(const Tensor& x, float s) override { ref::scale_forward(x, s); }
  void adamw_update(const Tensor& p, const Tensor& m, const Tensor& v, const Tensor& g, float lr, float beta1,
                    float beta2, float eps, float weight_decay, int64_t step) override {
    ref::adamw_update(p, m, v, g, lr, beta1, beta2, eps, weight_decay, step);
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
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && defined(__AVX512F__) && !defined(MOTIF_NO_AVX512)
  return "avx512f+fma+f16c";
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  return "avx2+fma+f16c";
#else
  return "scalar";
#endif
}

}  // namespace motif
