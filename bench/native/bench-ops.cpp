// bench-ops.cpp — op-level throughput of a backend: matmul (the hot op) at decode and prefill
// sizes, and paged attention, reported as GFLOP/s and GB/s of weights read. No Node needed.
//
//   build/bench-ops [--threads N] [--backend cpu|cpu-ref|cuda] [--reps R]
// Prints one line per case: shape, median time of R repetitions, GFLOP/s, weight GB/s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../native/backend/backend.h"

using namespace motif;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct DeviceBuf {
  Backend& b;
  void* p;
  DeviceBuf(Backend& be, size_t bytes, const void* host) : b(be), p(be.alloc(bytes)) {
    if (host) b.upload(p, host, bytes);
  }
  ~DeviceBuf() { b.release(p); }
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, reps = 5;
  std::string backend_name = "cpu";
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--backend" && i + 1 < argc)
      backend_name = argv[++i];
    else if (a == "--reps" && i + 1 < argc)
      reps = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench-ops [--threads N] [--backend cpu|cpu-ref|cuda] [--reps R]\n");
      return 2;
    }
  }
  BackendOptions opts;
  opts.n_threads = threads;
  auto backend = backend_create(backend_name, opts);
  Backend& b = *backend;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);

  struct MM {
    int64_t T, K, N;
    DType w;
  };
  const std::vector<MM> cases = {{1, 896, 4864, DType::BF16},   {4, 896, 4864, DType::BF16},
                                 {8, 896, 4864, DType::BF16},   {16, 896, 4864, DType::BF16},
                                 {64, 896, 4864, DType::BF16},  {256, 896, 4864, DType::BF16},
                                 {1, 4864, 896, DType::BF16},   {64, 4864, 896, DType::BF16},
                                 {8, 896, 151936, DType::BF16}, {64, 896, 4864, DType::F32}};
  std::printf("backend %s\n", b.name().c_str());
  for (const MM& c : cases) {
    std::vector<float> x(size_t(c.T * c.K));
    for (auto& v : x) v = dist(rng);
    const size_t wbytes = size_t(c.N * c.K) * dtype_size(c.w);
    std::vector<uint8_t> w(wbytes);
    for (size_t i = 0; i < wbytes / dtype_size(c.w); i++) {
      const float v = dist(rng) * 0.05f;
      if (c.w == DType::F32)
        std::memcpy(&w[i * 4], &v, 4);
      else {
        const uint16_t h = c.w == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
        std::memcpy(&w[i * 2], &h, 2);
      }
    }
    DeviceBuf xd(b, x.size() * 4, x.data()), wd(b, wbytes, w.data()), od(b, size_t(c.T * c.N) * 4, nullptr);
    const Tensor xt = make_tensor(DType::F32, xd.p, c.T, c.K);
    const Tensor wt = make_tensor(c.w, wd.p, c.N, c.K);
    const Tensor ot = make_tensor(DType::F32, od.p, c.T, c.N);
    b.matmul_forward(ot, xt, wt, Tensor{});  // warm-up
    b.synchronize();
    std::vector<double> times;
    for (int r = 0; r < reps; r++) {
      const auto t0 = std::chrono::steady_clock::now();
      b.matmul_forward(ot, xt, wt, Tensor{});
      b.synchronize();
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double s = median(times);
    const double flops = 2.0 * double(c.T) * double(c.K) * double(c.N);
    std::printf("matmul T=%-4lld K=%-5lld N=%-6lld %-4s  %8.3f ms  %7.1f GFLOP/s  %6.1f GB/s of weights\n",
                (long long)c.T, (long long)c.K, (long long)c.N, dtype_name(c.w), s * 1e3, flops / s / 1e9,
                double(wbytes) / s / 1e9);
  }
  return 0;
}
