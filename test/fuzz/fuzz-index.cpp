// fuzz-index.cpp — libFuzzer target for model/weights.h safetensors_index_parse (the text of
// model.safetensors.index.json).
//
// Expected outcomes: a tensor -> shard map, or motif::Error(Format). On success every shard name
// must be a plain file name in the model folder (non-empty, no '/', not "." or ".."), which is
// what keeps a hostile index from reaching files outside the folder.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../../native/model/weights.h"
#include "fuzz-common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_run([&] {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto map = motif::safetensors_index_parse(text, "fuzz.index.json");
    for (const auto& kv : map) {
      const std::string& f = kv.second;
      FUZZ_EXPECT(!f.empty());
      FUZZ_EXPECT(f.find('/') == std::string::npos);
      FUZZ_EXPECT(f != "." && f != "..");
    }
  });
  return 0;
}
