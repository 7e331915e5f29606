// fuzz-config.cpp — libFuzzer target for model/config.h: json_parse, then config_from_json, and
// on success rope_inv_freq (the first thing a model load computes from the config).
//
// Expected outcomes: a ModelConfig, or motif::Error (Format from the JSON or a field, Unsupported
// for an architecture / activation / rope type we do not handle). On success the config must
// hold what model code relies on: positive sizes, heads a multiple of KV heads, an even head
// dimension, a known rope type; rope_inv_freq returns head_dim / 2 values.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../../native/core/json.h"
#include "../../native/model/config.h"
#include "fuzz-common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_run([&] {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const motif::JsonValue root = motif::json_parse(text.data(), text.size(), "config.json");
    const motif::ModelConfig c = motif::config_from_json(root, "config.json");
    FUZZ_EXPECT(c.architecture == "Qwen2ForCausalLM" || c.architecture == "LlamaForCausalLM");
    FUZZ_EXPECT(c.hidden_size > 0 && c.intermediate_size > 0 && c.n_layers > 0 && c.vocab_size > 0);
    FUZZ_EXPECT(c.n_heads > 0 && c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0);
    FUZZ_EXPECT(c.head_dim > 0 && c.head_dim % 2 == 0);
    FUZZ_EXPECT(c.max_position_embeddings > 0 && c.rms_norm_eps > 0 && c.rope_theta > 0);
    FUZZ_EXPECT(c.rope_type == "default" || c.rope_type == "linear" || c.rope_type == "llama3");
    const auto freq = motif::rope_inv_freq(c);
    FUZZ_EXPECT(freq.size() == size_t(c.head_dim / 2));
  });
  return 0;
}
