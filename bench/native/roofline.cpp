// bench/native/roofline.cpp — measures the two ceilings of this machine's roofline: memory read
// bandwidth (GB/s) and fp32 FMA peak (GFLOP/s), for N threads. Standalone, no dependencies.
//
// Build:  g++ -std=c++17 -O3 -march=native -pthread bench/native/roofline.cpp -o roofline
// Run:    ./roofline [--threads N] [--size-mib M] [--runs R] [--json]
//
//   --threads N    worker threads (default: std::thread::hardware_concurrency())
//   --size-mib M   read buffer size in MiB (default 1024; keep it far larger than the last-level cache)
//   --runs R       timed runs of each measurement, the median is reported (default 5)
//   --json         print one JSON object:
//                  {"threads":N,"readBandwidthGBs":x,"fmaPeakGflops":y,"simd":"avx512f"|"avx2-fma"|"scalar"}
//
// Read bandwidth: each thread streams its own disjoint, contiguous slice of one buffer (first touched by
// that thread), summing it with AVX2 loads into 8 accumulators; the sums are published so the loads
// cannot be elided. bandwidth = buffer bytes / wall time of the slowest thread, GB = 1e9 bytes. The
// buffer is 2 MiB-aligned and advised for transparent huge pages, as the engine's weights are when it
// reads them into memory (the default on the CPU), so the ceiling is measured on the same kind of pages
// (on this project's VM huge pages read about 3% faster than 4 KiB ones).
// FMA peak: each thread runs 12 independent chains acc = fma(acc, a, b) on the widest vectors the
// engine's kernels use (16 floats with AVX-512F, else 8; 12 chains cover a 4–6 cycle FMA latency on
// two pipes); flops = 2 × lanes × 12 per iteration. The loop length is calibrated to about 0.3 s per
// run. Without AVX2+FMA at compile time both use a scalar fallback.
// Threads are pinned to CPUs 0..N-1 when the OS allows it. Timings are for reports, never for tests.

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ROOFLINE_AVX2 1
#if defined(__AVX512F__)
#define ROOFLINE_AVX512 1
static const char* const kSimd = "avx512f";
#else
static const char* const kSimd = "avx2-fma";
#endif
#else
#define ROOFLINE_AVX2 0
static const char* const kSimd = "scalar";
#endif

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

// Results land here so the compiler must perform every load and FMA.
volatile float g_sink[256];

void pin_to_cpu(int cpu) {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % CPU_SETSIZE, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);  // best effort: ignore failure
#else
  (void)cpu;
#endif
}

// Runs body(thread_index) on `threads` threads released together; returns the wall seconds from the
// release until the last thread is done.
template <typename Body>
double run_parallel(int threads, Body body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      pin_to_cpu(t);
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      body(t);
    });
  }
  while (ready.load() != threads) {
  }
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---------------------------------------------------------------------------------------------
// memory read bandwidth

// Sums n floats (n a multiple of 64, p 32-byte aligned).
float sum_slice(const float* p, size_t n) {
#if ROOFLINE_AVX2
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (size_t i = 0; i < n; i += 64) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    a4 = _mm256_add_ps(a4, _mm256_load_ps(p + i + 32));
    a5 = _mm256_add_ps(a5, _mm256_load_ps(p + i + 40));
    a6 = _mm256_add_ps(a6, _mm256_load_ps(p + i + 48));
    a7 = _mm256_add_ps(a7, _mm256_load_ps(p + i + 56));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float total = 0;
  for (float f : lanes) total += f;
  return total;
#else
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += p[i + j];
  float total = 0;
  for (float f : acc) total += f;
  return total;
#endif
}

double measure_read_bandwidth(int threads, size_t bytes, int runs, std::vector<double>* samples) {
  const size_t floats_per_thread = (bytes / sizeof(float) / threads) / 64 * 64;
  const size_t total_floats = floats_per_thread * threads;
  const size_t huge = size_t(2) << 20, buf_bytes = (total_floats * sizeof(float) + huge - 1) / huge * huge;
  void* mem = nullptr;
  if (posix_memalign(&mem, huge, buf_bytes) != 0) {
    std::fprintf(stderr, "roofline: cannot allocate %zu MiB\n", buf_bytes >> 20);
    std::exit(1);
  }
#ifdef MADV_HUGEPAGE
  madvise(mem, buf_bytes, MADV_HUGEPAGE);  // advice only: without THP the pages stay 4 KiB
#endif
  float* buf = static_cast<float*>(mem);
  // first touch by the owning thread (places pages near it), small values so sums stay finite
  run_parallel(threads, [&](int t) {
    float* p = buf + t * floats_per_thread;
    for (size_t i = 0; i < floats_per_thread; ++i) p[i] = static_cast<float>(i & 7) * 0.125f;
  });
  auto one_run = [&] {
    return run_parallel(threads, [&](int t) { g_sink[t] = sum_slice(buf + t * floats_per_thread, floats_per_thread); });
  };
  one_run();  // warm-up: TLB, page tables, frequency
  for (int r = 0; r < runs; ++r) samples->push_back(total_floats * sizeof(float) / one_run() / 1e9);
  std::free(buf);
  return median(*samples);
}

// ---------------------------------------------------------------------------------------------
// fp32 FMA peak

constexpr int kChains = 12;
#if ROOFLINE_AVX512
constexpr double kFlopsPerIter = 2.0 * 16 * kChains;  // one FMA = 2 flops, 16 lanes, 12 chains
#else
constexpr double kFlopsPerIter = 2.0 * 8 * kChains;  // one FMA = 2 flops, 8 lanes, 12 chains
#endif

float fma_chains(long iters, int seed) {
#if ROOFLINE_AVX512
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-3f);
  __m512 c[kChains];
  for (int j = 0; j < kChains; ++j) c[j] = _mm512_set1_ps(0.01f * float(seed + j));
  for (long i = 0; i < iters; ++i) {
    for (int j = 0; j < kChains; ++j) c[j] = _mm512_fmadd_ps(c[j], a, b);  // unrolled by -O3
  }
  alignas(64) float lanes[16];
  float total = 0;
  for (int j = 0; j < kChains; ++j) {
    _mm512_store_ps(lanes, c[j]);
    for (float f : lanes) total += f;
  }
  return total;
#elif ROOFLINE_AVX2
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-3f);
  __m256 c0 = _mm256_set1_ps(0.01f * seed), c1 = _mm256_set1_ps(0.1f), c2 = _mm256_set1_ps(0.2f),
         c3 = _mm256_set1_ps(0.3f), c4 = _mm256_set1_ps(0.4f), c5 = _mm256_set1_ps(0.5f), c6 = _mm256_set1_ps(0.6f),
         c7 = _mm256_set1_ps(0.7f), c8 = _mm256_set1_ps(0.8f), c9 = _mm256_set1_ps(0.9f), c10 = _mm256_set1_ps(1.0f),
         c11 = _mm256_set1_ps(1.1f);
  for (long i = 0; i < iters; ++i) {
    c0 = _mm256_fmadd_ps(c0, a, b);
    c1 = _mm256_fmadd_ps(c1, a, b);
    c2 = _mm256_fmadd_ps(c2, a, b);
    c3 = _mm256_fmadd_ps(c3, a, b);
    c4 = _mm256_fmadd_ps(c4, a, b);
    c5 = _mm256_fmadd_ps(c5, a, b);
    c6 = _mm256_fmadd_ps(c6, a, b);
    c7 = _mm256_fmadd_ps(c7, a, b);
    c8 = _mm256_fmadd_ps(c8, a, b);
    c9 = _mm256_fmadd_ps(c9, a, b);
    c10 = _mm256_fmadd_ps(c10, a, b);
    c11 = _mm256_fmadd_ps(c11, a, b);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float total = 0;
  for (float f : lanes) total += f;
  return total;
#else
  // 8 lanes × 12 chains of plain multiply-add; the compiler may vectorize or contract them.
  float c[kChains * 8];
  for (int j = 0; j < kChains * 8; ++j) c[j] = 0.01f * (j + seed);
  const float a = 0.999999f, b = 1e-3f;
  for (long i = 0; i < iters; ++i)
    for (int j = 0; j < kChains * 8; ++j) c[j] = c[j] * a + b;
  float total = 0;
  for (float f : c) total += f;
  return total;
#endif
}

double measure_fma_peak(int threads, int runs, std::vector<double>* samples) {
  // calibrate: grow the loop until one run takes >= 0.3 s
  long iters = 1 << 20;
  for (;;) {
    const double s = run_parallel(threads, [&](int t) { g_sink[t] = fma_chains(iters, t); });
    if (s >= 0.3) break;
    iters = static_cast<long>(iters * std::min(16.0, 0.35 / std::max(s, 1e-4)));
  }
  for (int r = 0; r < runs; ++r) {
    const double s = run_parallel(threads, [&](int t) { g_sink[t] = fma_chains(iters, t); });
    samples->push_back(kFlopsPerIter * iters * threads / s / 1e9);
  }
  return median(*samples);
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "roofline: %s\nusage: roofline [--threads N] [--size-mib M] [--runs R] [--json]\n", why);
  std::exit(2);
}

long parse_positive(const char* flag, const char* text) {
  char* end = nullptr;
  const long v = text ? std::strtol(text, &end, 10) : 0;
  if (!text || *end != '\0' || v <= 0) usage((std::string(flag) + " needs a positive integer").c_str());
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  long size_mib = 1024;
  int runs = 5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--threads")
      threads = static_cast<int>(parse_positive("--threads", next)), ++i;
    else if (arg == "--size-mib")
      size_mib = parse_positive("--size-mib", next), ++i;
    else if (arg == "--runs")
      runs = static_cast<int>(parse_positive("--runs", next)), ++i;
    else if (arg == "--json")
      json = true;
    else if (arg == "--help" || arg == "-h")
      usage("measures memory read bandwidth and fp32 FMA peak");
    else
      usage(("unknown argument " + arg).c_str());
  }
  if (threads > 256) usage("--threads must be at most 256");

  std::vector<double> bw_samples, fma_samples;
  const double bw = measure_read_bandwidth(threads, static_cast<size_t>(size_mib) << 20, runs, &bw_samples);
  const double peak = measure_fma_peak(threads, runs, &fma_samples);

  if (json) {
    std::printf("{\"threads\":%d,\"readBandwidthGBs\":%.2f,\"fmaPeakGflops\":%.2f,\"simd\":\"%s\"}\n", threads, bw,
                peak, kSimd);
    return 0;
  }
  std::printf("roofline: %d thread(s), %s kernels, median of %d runs\n", threads, kSimd, runs);
  std::printf("  memory read bandwidth: %8.2f GB/s   (%ld MiB buffer; runs:", bw, size_mib);
  for (double s : bw_samples) std::printf(" %.2f", s);
  std::printf(")\n  fp32 FMA peak:         %8.2f GFLOP/s (runs:", peak);
  for (double s : fma_samples) std::printf(" %.2f", s);
  std::printf(")\n  ridge point:           %8.2f flop/byte\n", peak / bw);
  return 0;
}
