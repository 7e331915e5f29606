// fuzz-safetensors.cpp — libFuzzer target for model/weights.h safetensors_parse on a whole file
// held in memory (8-byte little-endian header length, JSON header, data section).
//
// Expected outcomes: a list of entries, or motif::Error (Format / Unsupported). On success every
// promise weights.h makes is checked: spans inside the data section, byte size equal to
// shape x dtype size (computed here with overflow checks), at most 4 dimensions, no overlaps.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../../native/core/tensor.h"
#include "../../native/model/weights.h"
#include "fuzz-common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_run([&] {
    // An exact-size heap copy, so ASan sees any read past the end of the "file".
    std::vector<unsigned char> file(data, data + size);
    const auto entries = motif::safetensors_parse(file.data(), file.size(), "fuzz.safetensors");
    FUZZ_EXPECT(size >= 8);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | file[size_t(i)];
    const uint64_t data_start = 8 + header_len;
    std::vector<std::pair<size_t, size_t>> spans;
    for (const auto& e : entries) {
      FUZZ_EXPECT(e.begin >= data_start && e.begin <= e.end && e.end <= size);
      FUZZ_EXPECT(e.shape.size() <= 4);
      uint64_t numel = 1;
      for (const int64_t d : e.shape) {
        FUZZ_EXPECT(d >= 0);
        FUZZ_EXPECT(!__builtin_mul_overflow(numel, uint64_t(d), &numel));
      }
      uint64_t bytes = 0;
      FUZZ_EXPECT(!__builtin_mul_overflow(numel, uint64_t(motif::dtype_size(e.type)), &bytes));
      FUZZ_EXPECT(bytes == e.end - e.begin);
      if (e.end > e.begin) spans.emplace_back(e.begin, e.end);
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); i++) FUZZ_EXPECT(spans[i].first >= spans[i - 1].second);
  });
  return 0;
}
