// test-backend-ops.cpp — every op of ops.def, on every backend present, against the CPU reference.
//
// For each op there are cases over shapes (nice, odd-prime, single-token) and weight dtypes
// (F32, F16, BF16). Each case builds seeded random inputs, runs the op on the reference
// backend (cpu-ref: the plain loops of ref.cpp) and on the backend under test, and compares
// by normalized mean squared error, NMSE = sum((out - ref)^2) / sum(ref^2), against a bound
// set per op. Outputs are allocated with guard floats after them that must survive the op.
//
// Usage: test-backend-ops [-o OP] [-b BACKEND] [--coverage] [-v]
//   -b cpu | cuda   test only that backend (default: every backend that can run here;
//                   cuda prints one line saying why it skipped when there is no device)
//   --coverage      fail if an op in ops.def has no test case
// A plain ctest executable: no Node needed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../../native/backend/backend.h"
#include "../../native/core/status.h"

using namespace motif;

namespace {

constexpr int kGuard = 16;
constexpr uint32_t kGuardBits = 0x7fc0dead;  // a NaN payload nobody writes by accident

// --- host <-> backend buffers --------------------------------------------------------------

struct Buffers {
  Backend& b;
  std::vector<void*> ptrs;
  explicit Buffers(Backend& be) : b(be) {}
  ~Buffers() {
    for (void* p : ptrs) b.release(p);
  }
  // Uploads host bytes as a tensor of `type` and `shape`; adds guard floats after it.
  Tensor put(DType type, const void* host, std::vector<int64_t> shape) {
    Tensor t;
    t.type = type;
    t.ndim = int32_t(shape.size());
    for (size_t i = 0; i < shape.size(); i++) t.shape[i] = shape[i];
    const size_t bytes = t.nbytes();
    t.data = b.alloc(bytes + kGuard * 4);
    ptrs.push_back(t.data);
    if (host) b.upload(t.data, host, bytes);
    std::vector<uint32_t> guard(kGuard, kGuardBits);
    b.upload(static_cast<char*>(t.data) + bytes, guard.data(), kGuard * 4);
    return t;
  }
  std::vector<float> get(const Tensor& t, bool* guard_ok) {
    std::vector<float> out(size_t(t.numel()));
    b.download(out.data(), t.data, t.nbytes());
    std::vector<uint32_t> guard(kGuard);
    b.download(guard.data(), static_cast<char*>(t.data) + t.nbytes(), kGuard * 4);
    for (uint32_t g : guard)
      if (g != kGuardBits) *guard_ok = false;
    return out;
  }
};

// Random host data for a float-typed tensor, stored in `type`.
struct HostData {
  DType type;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

HostData random_data(std::mt19937& rng, DType type, std::vector<int64_t> shape, float lo = -1.0f, float hi = 1.0f) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  HostData h{type, shape, std::vector<uint8_t>(size_t(n) * dtype_size(type))};
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < n; i++) {
    const float v = dist(rng);
    if (type == DType::F32)
      std::memcpy(h.bytes.data() + i * 4, &v, 4);
    else {
      const uint16_t u = type == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
      std::memcpy(h.bytes.data() + i * 2, &u, 2);
    }
  }
  return h;
}

HostData int_data(std::vector<int32_t> values) {
  HostData h{DType::I32, {int64_t(values.size())}, std::vector<uint8_t>(values.size() * 4)};
  std::memcpy(h.bytes.data(), values.data(), values.size() * 4);
  return h;
}

// An op invocation over tensors already on a backend. inputs[i] are uploaded in order;
// outputs are the tensors compared. In-place ops list their operand as an output too.
struct Case {
  Op op;
  std::string desc;
  double max_nmse;
  std::vector<HostData> inputs;
  std::vector<size_t> outputs;  // indices into inputs that are outputs
  std::function<void(Backend&, std::vector<Tensor>&)> run;
};

double nmse(const std::vector<float>& out, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); i++) {
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  if (den == 0) return num;
  return num / den;
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

std::vector<std::vector<float>> run_case(Backend& b, const Case& c, bool* guard_ok) {
  Buffers buf(b);
  std::vector<Tensor> ts;
  for (const auto& h : c.inputs) ts.push_back(buf.put(h.type, h.bytes.data(), h.shape));
  c.run(b, ts);
  b.synchronize();
  std::vector<std::vector<float>> outs;
  for (size_t i : c.outputs) outs.push_back(buf.get(ts[i], guard_ok));
  return outs;
}

const DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};
const char* short_name(DType t) { return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "bf16"; }

// --- the cases ---------------------------------------------------------------------------------

std::vector<Case> build_cases() {
  std::vector<Case> cases;
  std::mt19937 rng(1234);

  for (DType wt : kFloatTypes)
    for (auto [V, C, T] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{17, 8, 1}, {1000, 37, 5}, {97, 64, 33}}) {
      std::vector<int32_t> ids;
      for (int64_t t = 0; t < T; t++) ids.push_back(int32_t(rng() % V));
      cases.push_back(
          {Op::embedding_forward,
           "V=" + std::to_string(V) + " C=" + std::to_string(C) + " T=" + std::to_string(T) + " " + short_name(wt),
           0.0,
           {random_data(rng, DType::F32, {T, C}), random_data(rng, wt, {V, C}), int_data(ids)},
           {0},
           [](Backend& b, std::vector<Tensor>& t) { b.embedding_forward(t[0], t[1], t[2]); }});
    }

  for (DType wt : kFloatTypes)
    for (auto [T, C] : std::vector<std::pair<int64_t, int64_t>>{{1, 8}, {7, 37}, {64, 896}}) {
      cases.push_back({Op::rmsnorm_forward,
                       "T=" + std::to_string(T) + " C=" + std::to_string(C) + " " + short_name(wt),
                       1e-12,
                       {random_data(rng, DType::F32, {T, C}), random_data(rng, DType::F32, {T, C}, -3, 3),
                        random_data(rng, wt, {C}, 0.5f, 1.5f)},
                       {0},
                       [](Backend& b, std::vector<Tensor>& t) { b.rmsnorm_forward(t[0], t[1], t[2], 1e-6f); }});
    }

  const std::vector<std::tuple<int64_t, int64_t, int64_t>> mm_shapes = {
      {1, 64, 64},
      {1, 37, 29},
      {2, 96, 67},
      {3, 37, 29},
      {4, 896, 128},
      {5, 96, 67},
      {64, 128, 48},
      {67, 131, 97},
      {130, 64, 19},
      // decode batches (streamed, rows in groups of 12)
      {7, 131, 53},
      {11, 33, 25},
      {16, 80, 100},
      {17, 40, 31}};
  for (DType wt : kFloatTypes)
    for (auto [T, K, N] : mm_shapes)
      for (bool bias : {false, true}) {
        std::vector<HostData> in = {random_data(rng, DType::F32, {T, N}), random_data(rng, DType::F32, {T, K}),
                                    random_data(rng, wt, {N, K})};
        if (bias) in.push_back(random_data(rng, wt, {N}));
        cases.push_back({Op::matmul_forward,
                         "T=" + std::to_string(T) + " K=" + std::to_string(K) + " N=" + std::to_string(N) + " " +
                             short_name(wt) + (bias ? " +bias" : ""),
                         1e-10,
                         in,
                         {0},
                         [bias](Backend& b, std::vector<Tensor>& t) {
                           b.matmul_forward(t[0], t[1], t[2], bias ? t[3] : Tensor{});
                         }});
      }

  for (auto [T, H, D] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 8}, {9, 3, 64}, {5, 2, 6}}) {
    std::vector<int32_t> pos;
    for (int64_t t = 0; t < T; t++) pos.push_back(int32_t(rng() % 4096));
    std::vector<float> inv(size_t(D / 2));
    for (int64_t i = 0; i < D / 2; i++) inv[size_t(i)] = float(1.0 / std::pow(10000.0, 2.0 * double(i) / double(D)));
    HostData invd{DType::F32, {D / 2}, std::vector<uint8_t>(inv.size() * 4)};
    std::memcpy(invd.bytes.data(), inv.data(), inv.size() * 4);
    cases.push_back({Op::rope_forward,
                     "T=" + std::to_string(T) + " H=" + std::to_string(H) + " D=" + std::to_string(D),
                     1e-12,
                     {random_data(rng, DType::F32, {T, H, D}), int_data(pos), invd},
                     {0},
                     [](Backend& b, std::vector<Tensor>& t) { b.rope_forward(t[0], t[1], t[2]); }});
  }

  for (auto lens : std::vector<std::vector<int32_t>>{{1}, {7}, {3, 5, 1}, {33, 2}})
    for (auto [H, Hkv, D] : std::vector<std::tuple<int32_t, int32_t, int32_t>>{{2, 2, 8}, {4, 2, 64}, {7, 1, 6}}) {
      auto starts = std::make_shared<std::vector<int32_t>>(1, 0);
      for (int32_t l : lens) starts->push_back(starts->back() + l);
      const int64_t T = starts->back();
      std::string ls;
      for (int32_t l : lens) ls += (ls.empty() ? "" : ",") + std::to_string(l);
      cases.push_back(
          {Op::attention_forward,
           "lens=" + ls + " H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) + " D=" + std::to_string(D),
           1e-10,
           {random_data(rng, DType::F32, {T, int64_t(H) * D}), random_data(rng, DType::F32, {T, H, D}),
            random_data(rng, DType::F32, {T, Hkv, D}), random_data(rng, DType::F32, {T, Hkv, D})},
           {0},
           [starts, H = H, Hkv = Hkv, D = D](Backend& b, std::vector<Tensor>& t) {
             AttentionParams p;
             p.seq_starts = starts->data();
             p.n_seqs = int32_t(starts->size() - 1);
             p.n_heads = H;
             p.n_kv_heads = Hkv;
             p.head_dim = D;
             p.scale = 1.0f / std::sqrt(float(D));
             b.attention_forward(t[0], t[1], t[2], t[3], p);
           }});
    }

  for (int64_t n : {1, 37, 4099}) {
    cases.push_back({Op::swiglu_forward,
                     "n=" + std::to_string(n),
                     1e-12,
                     {random_data(rng, DType::F32, {n}), random_data(rng, DType::F32, {n}, -6, 6),
                      random_data(rng, DType::F32, {n})},
                     {0},
                     [](Backend& b, std::vector<Tensor>& t) { b.swiglu_forward(t[0], t[1], t[2]); }});
    cases.push_back(
        {Op::add_forward,
         "n=" + std::to_string(n),
         0.0,
         {random_data(rng, DType::F32, {n}), random_data(rng, DType::F32, {n}), random_data(rng, DType::F32, {n})},
         {0},
         [](Backend& b, std::vector<Tensor>& t) { b.add_forward(t[0], t[1], t[2]); }});
  }
  // kv_store: T rows scattered to distinct random slots of a [blocks, BS, Hkv, D] cache.
  for (auto [T, blocks, BS, Hkv, D] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>>{
           {1, 2, 16, 2, 8}, {13, 5, 4, 1, 6}, {40, 7, 16, 2, 64}}) {
    std::vector<int32_t> slots(size_t(blocks * BS));
    for (size_t i = 0; i < slots.size(); i++) slots[i] = int32_t(i);
    std::shuffle(slots.begin(), slots.end(), rng);
    slots.resize(size_t(T));
    cases.push_back(
        {Op::kv_store_forward,
         "T=" + std::to_string(T) + " blocks=" + std::to_string(blocks) + " BS=" + std::to_string(BS) +
             " Hkv=" + std::to_string(Hkv) + " D=" + std::to_string(D),
         0.0,
         {random_data(rng, DType::F32, {blocks, BS, Hkv, D}), random_data(rng, DType::F32, {blocks, BS, Hkv, D}),
          random_data(rng, DType::F32, {T, Hkv, D}), random_data(rng, DType::F32, {T, Hkv, D}), int_data(slots)},
         {0, 1},
         [](Backend& b, std::vector<Tensor>& t) { b.kv_store_forward(t[0], t[1], t[2], t[3], t[4]); }});
  }

  // paged_attention: sequences with shuffled block tables; each row a query at some position.
  struct PagedShape {
    std::vector<int32_t> seq_lens;  // keys each sequence holds
    int32_t H, Hkv, D, BS;
  };
  for (const PagedShape& ps : std::vector<PagedShape>{
           {{1}, 2, 2, 8, 16}, {{17, 5}, 4, 2, 64, 16}, {{3, 29, 8}, 7, 1, 6, 4}, {{130}, 14, 2, 64, 16}}) {
    const int32_t n_seqs = int32_t(ps.seq_lens.size());
    int32_t max_blocks = 0, total_blocks = 0;
    for (int32_t l : ps.seq_lens) {
      max_blocks = std::max(max_blocks, (l + ps.BS - 1) / ps.BS);
      total_blocks += (l + ps.BS - 1) / ps.BS;
    }
    total_blocks += 3;  // unused blocks too
    std::vector<int32_t> ids(static_cast<size_t>(total_blocks));
    for (int32_t i = 0; i < total_blocks; i++) ids[size_t(i)] = i;
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<int32_t> tables(size_t(n_seqs * max_blocks), -1);
    size_t next = 0;
    for (int32_t s = 0; s < n_seqs; s++)
      for (int32_t b = 0; b < (ps.seq_lens[size_t(s)] + ps.BS - 1) / ps.BS; b++)
        tables[size_t(s * max_blocks + b)] = ids[next++];
    // Rows: for every sequence its last position and, when longer than 2, a middle one.
    std::vector<int32_t> row_seq, row_pos;
    for (int32_t s = 0; s < n_seqs; s++) {
      row_seq.push_back(s);
      row_pos.push_back(ps.seq_lens[size_t(s)] - 1);
      if (ps.seq_lens[size_t(s)] > 2) {
        row_seq.push_back(s);
        row_pos.push_back(ps.seq_lens[size_t(s)] / 2);
      }
    }
    const int64_t T = int64_t(row_seq.size());
    std::string ls;
    for (int32_t l : ps.seq_lens) ls += (ls.empty() ? "" : ",") + std::to_string(l);
    HostData tab{DType::I32, {n_seqs, max_blocks}, std::vector<uint8_t>(tables.size() * 4)};
    std::memcpy(tab.bytes.data(), tables.data(), tables.size() * 4);
    const PagedShape shape = ps;
    cases.push_back(
        {Op::paged_attention_forward,
         "lens=" + ls + " H=" + std::to_string(ps.H) + " Hkv=" + std::to_string(ps.Hkv) + " D=" + std::to_string(ps.D) +
             " BS=" + std::to_string(ps.BS),
         1e-10,
         {random_data(rng, DType::F32, {T, int64_t(ps.H) * ps.D}), random_data(rng, DType::F32, {T, ps.H, ps.D}),
          random_data(rng, DType::F32, {total_blocks, ps.BS, ps.Hkv, ps.D}, -2, 2),
          random_data(rng, DType::F32, {total_blocks, ps.BS, ps.Hkv, ps.D}), tab, int_data(row_seq), int_data(row_pos)},
         {0},
         [shape](Backend& b, std::vector<Tensor>& t) {
           PagedAttentionParams p;
           p.n_heads = shape.H;
           p.n_kv_heads = shape.Hkv;
           p.head_dim = shape.D;
           p.block_size = shape.BS;
           p.scale = 1.0f / std::sqrt(float(shape.D));
           b.paged_attention_forward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], p);
         }});
  }
  // --- training ops --------------------------------------------------------------------------
  for (auto [T, K, N, r] :
       std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{{1, 16, 8, 2}, {7, 37, 29, 4}, {33, 64, 96, 8}}) {
    cases.push_back(
        {Op::lora_forward,
         "T=" + std::to_string(T) + " K=" + std::to_string(K) + " N=" + std::to_string(N) + " r=" + std::to_string(r),
         1e-10,
         {random_data(rng, DType::F32, {T, N}), random_data(rng, DType::F32, {T, r}),
          random_data(rng, DType::F32, {T, K}), random_data(rng, DType::F32, {r, K}),
          random_data(rng, DType::F32, {N, r})},
         {0, 1},
         [](Backend& b, std::vector<Tensor>& t) { b.lora_forward(t[0], t[1], t[2], t[3], t[4], 0.75f); }});
  }
  for (DType wt : kFloatTypes)
    for (auto [T, K, N] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 64, 64}, {5, 37, 29}, {40, 96, 131}})
      for (bool acc : {false, true})
        cases.push_back(
            {Op::matmul_backward_input,
             "T=" + std::to_string(T) + " K=" + std::to_string(K) + " N=" + std::to_string(N) + " " + short_name(wt) +
                 (acc ? " +=" : ""),
             1e-10,
             {random_data(rng, DType::F32, {T, K}), random_data(rng, DType::F32, {T, N}), random_data(rng, wt, {N, K})},
             {0},
             [acc](Backend& b, std::vector<Tensor>& t) { b.matmul_backward_input(t[0], t[1], t[2], acc); }});
  for (auto [T, K, N] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 8, 4}, {9, 37, 5}, {64, 16, 64}})
    cases.push_back({Op::matmul_backward_weight,
                     "T=" + std::to_string(T) + " K=" + std::to_string(K) + " N=" + std::to_string(N),
                     1e-10,
                     {random_data(rng, DType::F32, {N, K}), random_data(rng, DType::F32, {T, N}),
                      random_data(rng, DType::F32, {T, K})},
                     {0},
                     [](Backend& b, std::vector<Tensor>& t) { b.matmul_backward_weight(t[0], t[1], t[2], 0.5f); }});
  for (DType wt : kFloatTypes)
    for (auto [T, C] : std::vector<std::pair<int64_t, int64_t>>{{1, 8}, {7, 37}})
      cases.push_back({Op::rmsnorm_backward,
                       "T=" + std::to_string(T) + " C=" + std::to_string(C) + " " + short_name(wt),
                       1e-10,
                       {random_data(rng, DType::F32, {T, C}), random_data(rng, DType::F32, {T, C}),
                        random_data(rng, DType::F32, {T, C}), random_data(rng, wt, {C}, 0.5f, 1.5f)},
                       {0},
                       [](Backend& b, std::vector<Tensor>& t) { b.rmsnorm_backward(t[0], t[1], t[2], t[3], 1e-6f); }});
  for (auto [T, C] : std::vector<std::pair<int64_t, int64_t>>{{1, 8}, {7, 37}}) {
    const std::string desc = "T=" + std::to_string(T) + " C=" + std::to_string(C);
    cases.push_back({Op::rmsnorm_backward_weight,
                     desc,
                     1e-10,
                     {random_data(rng, DType::F32, {C}), random_data(rng, DType::F32, {T, C}),
                      random_data(rng, DType::F32, {T, C})},
                     {0},
                     [](Backend& b, std::vector<Tensor>& t) { b.rmsnorm_backward_weight(t[0], t[1], t[2], 1e-6f); }});
    cases.push_back({Op::bias_backward,
                     desc,
                     1e-10,
                     {random_data(rng, DType::F32, {C}), random_data(rng, DType::F32, {T, C})},
                     {0},
                     [](Backend& b, std::vector<Tensor>& t) { b.bias_backward(t[0], t[1]); }});
    std::vector<int32_t> ids;  // repeated ids: their rows must add up
    for (int64_t i = 0; i < T; i++) ids.push_back(int32_t(rng() % 3));
    cases.push_back({Op::embedding_backward,
                     desc,
                     1e-10,
                     {random_data(rng, DType::F32, {5, C}), random_data(rng, DType::F32, {T, C}), int_data(ids)},
                     {0},
                     [](Backend& b, std::vector<Tensor>& t) { b.embedding_backward(t[0], t[1], t[2]); }});
  }
  for (auto [T, H, D] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 8}, {9, 3, 64}}) {
    std::vector<int32_t> pos;
    for (int64_t t = 0; t < T; t++) pos.push_back(int32_t(rng() % 4096));
    std::vector<float> inv(size_t(D / 2));
    for (int64_t i = 0; i < D / 2; i++) inv[size_t(i)] = float(1.0 / std::pow(10000.0, 2.0 * double(i) / double(D)));
    HostData invd{DType::F32, {D / 2}, std::vector<uint8_t>(inv.size() * 4)};
    std::memcpy(invd.bytes.data(), inv.data(), inv.size() * 4);
    cases.push_back({Op::rope_backward,
                     "T=" + std::to_string(T) + " H=" + std::to_string(H) + " D=" + std::to_string(D),
                     1e-12,
                     {random_data(rng, DType::F32, {T, H, D}), int_data(pos), invd},
                     {0},
                     [](Backend& b, std::vector<Tensor>& t) { b.rope_backward(t[0], t[1], t[2]); }});
  }
  for (auto lens : std::vector<std::vector<int32_t>>{{1}, {3, 5}})
    for (auto [H, Hkv, D] : std::vector<std::tuple<int32_t, int32_t, int32_t>>{{2, 2, 8}, {4, 1, 6}}) {
      auto starts = std::make_shared<std::vector<int32_t>>(1, 0);
      for (int32_t l : lens) starts->push_back(starts->back() + l);
      const int64_t T = starts->back();
      cases.push_back({Op::attention_backward,
                       "T=" + std::to_string(T) + " H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                           " D=" + std::to_string(D),
                       1e-10,
                       {random_data(rng, DType::F32, {T, H, D}), random_data(rng, DType::F32, {T, Hkv, D}),
                        random_data(rng, DType::F32, {T, Hkv, D}), random_data(rng, DType::F32, {T, int64_t(H) * D}),
                        random_data(rng, DType::F32, {T, H, D}), random_data(rng, DType::F32, {T, Hkv, D}),
                        random_data(rng, DType::F32, {T, Hkv, D})},
                       {0, 1, 2},
                       [starts, H = H, Hkv = Hkv, D = D](Backend& b, std::vector<Tensor>& t) {
                         AttentionParams p;
                         p.seq_starts = starts->data();
                         p.n_seqs = int32_t(starts->size() - 1);
                         p.n_heads = H;
                         p.n_kv_heads = Hkv;
                         p.head_dim = D;
                         p.scale = 1.0f / std::sqrt(float(D));
                         b.attention_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], p);
                       }});
    }
  for (int64_t n : {1, 37, 1000})
    cases.push_back(
        {Op::swiglu_backward,
         "n=" + std::to_string(n),
         1e-12,
         {random_data(rng, DType::F32, {n}), random_data(rng, DType::F32, {n}), random_data(rng, DType::F32, {n}),
          random_data(rng, DType::F32, {n}, -5, 5), random_data(rng, DType::F32, {n})},
         {0, 1},
         [](Backend& b, std::vector<Tensor>& t) { b.swiglu_backward(t[0], t[1], t[2], t[3], t[4]); }});
  for (auto [T, Vc, v0] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 16, 0}, {5, 37, 100}}) {
    std::vector<int32_t> targets;
    for (int64_t t = 0; t < T; t++) targets.push_back(int32_t(v0 + int64_t(rng() % uint32_t(Vc + 10))) - 5);
    std::vector<float> mx(size_t(T), 0.5f), sum(size_t(T), 3.0f);
    HostData mxd{DType::F32, {T}, std::vector<uint8_t>(size_t(T) * 4)},
        sumd{DType::F32, {T}, std::vector<uint8_t>(size_t(T) * 4)};
    std::memcpy(mxd.bytes.data(), mx.data(), size_t(T) * 4);
    std::memcpy(sumd.bytes.data(), sum.data(), size_t(T) * 4);
    cases.push_back({Op::lmhead_lse_forward,
                     "T=" + std::to_string(T) + " Vc=" + std::to_string(Vc),
                     1e-12,
                     {random_data(rng, DType::F32, {T, Vc}, -4, 4), int_data(targets), mxd, sumd,
                      random_data(rng, DType::F32, {T})},
                     {2, 3, 4},
                     [v0 = v0](Backend& b, std::vector<Tensor>& t) {
                       b.lmhead_lse_forward(t[0], v0, t[1], 1.25f, t[2], t[3], t[4]);
                     }});
    cases.push_back(
        {Op::lmhead_grad_forward,
         "T=" + std::to_string(T) + " Vc=" + std::to_string(Vc),
         1e-12,
         {random_data(rng, DType::F32, {T, Vc}, -4, 4), int_data(targets), random_data(rng, DType::F32, {T}, 3, 5),
          random_data(rng, DType::F32, {T})},
         {0},
         [v0 = v0](Backend& b, std::vector<Tensor>& t) { b.lmhead_grad_forward(t[0], v0, t[1], 0.8f, t[2], t[3]); }});
  }
  for (int64_t n : {1, 37, 5000})
    cases.push_back({Op::scale_forward,
                     "n=" + std::to_string(n),
                     0.0,
                     {random_data(rng, DType::F32, {n})},
                     {0},
                     [](Backend& b, std::vector<Tensor>& t) { b.scale_forward(t[0], -1.75f); }});
  for (int64_t n : {1, 37, 5000})
    cases.push_back({Op::adamw_update,
                     "n=" + std::to_string(n),
                     1e-12,
                     {random_data(rng, DType::F32, {n}), random_data(rng, DType::F32, {n}),
                      random_data(rng, DType::F32, {n}, 0, 1), random_data(rng, DType::F32, {n})},
                     {0, 1, 2},
                     [](Backend& b, std::vector<Tensor>& t) {
                       b.adamw_update(t[0], t[1], t[2], t[3], 1e-3f, 0.9f, 0.99f, 1e-8f, 0.1f, 3);
                     }});
  return cases;
}

}  // namespace

int main(int argc, char** argv) {
  std::string only_op, only_backend;
  bool coverage = false, verbose = false;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "-o" && i + 1 < argc)
      only_op = argv[++i];
    else if (a == "-b" && i + 1 < argc)
      only_backend = argv[++i];
    else if (a == "--coverage")
      coverage = true;
    else if (a == "-v")
      verbose = true;
    else {
      std::fprintf(stderr, "usage: test-backend-ops [-o OP] [-b cpu|cuda] [--coverage] [-v]\n");
      return 2;
    }
  }
  const std::vector<Case> cases = build_cases();

  if (coverage) {
    std::map<int, int> count;
    for (const auto& c : cases) count[int(c.op)]++;
    int missing = 0;
    for (int o = 0; o < int(Op::Count); o++) {
      if (!count[o]) {
        std::printf("op %s has no test case\n", op_name(Op(o)));
        missing++;
      }
    }
    std::printf("coverage: %d ops, %d without cases\n", int(Op::Count), missing);
    std::printf("%d passed, %d failed\n", int(Op::Count) - missing, missing);
    return missing ? 1 : 0;
  }

  auto ref = backend_create("cpu-ref", {});
  int passed = 0, failed = 0;
  for (const std::string& name : backends_compiled()) {
    if (!only_backend.empty() && only_backend != name) continue;
    std::unique_ptr<Backend> backend;
    try {
      backend = backend_create(name, {});
    } catch (const Error& e) {
      std::printf("backend %s: skipped: %s\n", name.c_str(), e.what());
      continue;
    }
    for (const auto& c : cases) {
      if (!only_op.empty() && only_op != op_name(c.op)) continue;
      if (!backend->supports_op(c.op, c.inputs.size() > 1 ? c.inputs[1].type : DType::F32)) {
        std::printf("  %-8s %-18s %-40s not supported\n", name.c_str(), op_name(c.op), c.desc.c_str());
        continue;
      }
      bool guard_ok = true, ref_guard_ok = true;
      std::string err;
      double worst = 0;
      bool finite = true;
      try {
        const auto want = run_case(*ref, c, &ref_guard_ok);
        const auto got = run_case(*backend, c, &guard_ok);
        for (size_t i = 0; i < want.size(); i++) {
          finite = finite && all_finite(got[i]) && all_finite(want[i]);
          worst = std::max(worst, nmse(got[i], want[i]));
        }
      } catch (const std::exception& e) {
        err = e.what();
      }
      const bool ok = err.empty() && guard_ok && ref_guard_ok && finite && worst <= c.max_nmse;
      ok ? passed++ : failed++;
      if (!ok || verbose) {
        std::printf("  %-8s %-18s %-40s nmse=%.3g (max %.1g)%s%s%s %s\n", name.c_str(), op_name(c.op), c.desc.c_str(),
                    worst, c.max_nmse, guard_ok && ref_guard_ok ? "" : " GUARD-OVERWRITTEN",
                    finite ? "" : " NON-FINITE", err.empty() ? "" : (" error: " + err).c_str(), ok ? "OK" : "FAIL");
      }
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
