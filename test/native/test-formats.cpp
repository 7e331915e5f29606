// test-formats.cpp — the file parsers on good and hostile input: JSON, safetensors headers,
// the sharded index, config.json, and the half-precision conversions.
//
// Every bad input must raise motif::Error whose message names what was wrong; nothing may
// crash. Expected values are written by hand from the formats' specifications.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../../native/core/json.h"
#include "../../native/core/status.h"
#include "../../native/core/tensor.h"
#include "../../native/model/config.h"
#include "../../native/model/weights.h"

using namespace motif;

static int g_passed = 0, g_failed = 0;

static void check(bool ok, const std::string& what) {
  if (ok) {
    g_passed++;
  } else {
    g_failed++;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

// Expects fn to throw motif::Error whose message contains `needle`.
static void expect_error(const std::string& what, const std::string& needle, const std::function<void()>& fn) {
  try {
    fn();
    check(false, what + ": no error thrown");
  } catch (const Error& e) {
    const bool ok = std::string(e.what()).find(needle) != std::string::npos;
    if (!ok) std::printf("  message was: %s\n", e.what());
    check(ok, what + ": message mentions '" + needle + "'");
  }
}

static std::vector<unsigned char> make_safetensors(const std::string& header, size_t data_bytes) {
  std::vector<unsigned char> f(8 + header.size() + data_bytes, 0);
  uint64_t n = header.size();
  for (int i = 0; i < 8; i++) f[size_t(i)] = (unsigned char)(n >> (8 * i));
  std::memcpy(f.data() + 8, header.data(), header.size());
  return f;
}

static JsonValue parse(const std::string& s) { return json_parse(s.data(), s.size(), "test.json"); }

int main() {
  // --- JSON --------------------------------------------------------------------------
  {
    const JsonValue v = parse(R"({"a": [1, 2.5, -3e2], "b": "x\u00e9\ud83d\ude00", "c": null, "d": true})");
    check(v.is_object() && v.members().size() == 4, "json object with 4 members");
    check(v.find("a")->items()[2].as_number() == -300.0, "json exponent");
    check(v.find("b")->as_string() == "x\xc3\xa9\xf0\x9f\x98\x80", "json unicode escapes and surrogate pair");
    check(v.find("a")->items()[0].is_integer() && !v.find("a")->items()[1].is_integer(), "json integer detection");
  }
  expect_error("json trailing comma", "line 1, column", [] { parse("[1, 2,]"); });
  expect_error("json unterminated string", "unterminated string", [] { parse("{\"a\": \"abc"); });
  expect_error("json garbage after value", "unexpected data", [] { parse("{} x"); });
  expect_error("json empty input", "unexpected end", [] { parse(""); });
  expect_error("json line numbers", "line 3", [] { parse("{\n\"a\": 1,\n\"b\": }"); });
  expect_error("json deep nesting", "nesting", [] { parse(std::string(1000, '[') + std::string(1000, ']')); });
  expect_error("json lone surrogate", "surrogate", [] { parse("\"\\ud800\""); });

  // --- safetensors headers -------------------------------------------------------------------
  {
    const auto f = make_safetensors(
        R"({"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}})", 12);
    const auto e = safetensors_parse(f.data(), f.size(), "m.safetensors");
    check(e.size() == 1 && e[0].type == DType::BF16 && e[0].shape == std::vector<int64_t>({2, 3}),
          "safetensors parses one tensor");
    check(e[0].begin == f.size() - 12 && e[0].end == f.size(), "safetensors offsets are relative to the data section");
  }
  expect_error("safetensors too short", "too short", [] {
    unsigned char b[4] = {0};
    safetensors_parse(b, 4, "m.safetensors");
  });
  expect_error("safetensors header past end", "runs past the end", [] {
    auto f = make_safetensors("{}", 0);
    f[0] = 0xff;
    safetensors_parse(f.data(), f.size(), "m.safetensors");
  });
  expect_error("safetensors truncated data", "outside the data section", [] {
    const auto f = make_safetensors(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
    safetensors_parse(f.data(), f.size(), "m.safetensors");
  });
  expect_error("safetensors size mismatch", "expected 16", [] {
    const auto f = make_safetensors(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})", 16);
    safetensors_parse(f.data(), f.size(), "m.safetensors");
  });
  expect_error("safetensors overlap", "overlap", [] {
    const auto f = make_safetensors(
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
        12);
    safetensors_parse(f.data(), f.size(), "m.safetensors");
  });
  expect_error("safetensors unknown dtype", "has dtype F64", [] {
    const auto f = make_safetensors(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8);
    safetensors_parse(f.data(), f.size(), "m.safetensors");
  });
  expect_error("safetensors bad json names file", "m.safetensors (safetensors header)", [] {
    const auto f = make_safetensors("{not json", 0);
    safetensors_parse(f.data(), f.size(), "m.safetensors");
  });
  expect_error("safetensors negative offset", "data_offsets", [] {
    const auto f = make_safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8);
    safetensors_parse(f.data(), f.size(), "m.safetensors");
  });
  expect_error("index without weight_map", "weight_map", [] { safetensors_index_parse("{}", "idx.json"); });
  expect_error("index with a path escape", "plain file name",
               [] { safetensors_index_parse(R"({"weight_map":{"a":"../x.safetensors"}})", "idx.json"); });

  // --- config.json -------------------------------------------------------------------------
  const std::string good =
      R"({"architectures":["Qwen2ForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,)"
      R"("num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,"rms_norm_eps":1e-6,"rope_theta":10000.0})";
  {
    const ModelConfig c = config_from_json(parse(good), "config.json");
    check(c.head_dim == 16 && c.qkv_bias && !c.o_bias && !c.tie_word_embeddings, "qwen2 config defaults");
  }
  expect_error("config missing field", "'hidden_size'", [] {
    config_from_json(parse(R"({"architectures":["LlamaForCausalLM"],"intermediate_size":8})"), "config.json");
  });
  expect_error("config unsupported architecture", "GPT2LMHeadModel",
               [] { config_from_json(parse(R"({"architectures":["GPT2LMHeadModel"]})"), "config.json"); });
  expect_error("config heads not multiple", "multiple of num_key_value_heads", [&] {
    std::string s = good;
    s.replace(s.find("\"num_key_value_heads\":2"), 23, "\"num_key_value_heads\":3");
    config_from_json(parse(s), "config.json");
  });
  expect_error("config wrong type", "must be a positive integer", [&] {
    std::string s = good;
    s.replace(s.find("\"hidden_size\":64"), 16, "\"hidden_size\":\"64\"");
    config_from_json(parse(s), "config.json");
  });
  expect_error("config yarn rope", "not supported", [&] {
    std::string s = good;
    s.insert(s.size() - 1, R"(,"rope_scaling":{"rope_type":"yarn","factor":4})");
    config_from_json(parse(s), "config.json");
  });
  {
    // llama3 scaling: frequencies whose wavelength exceeds original_len/low_factor are divided
    // by `factor`; those below original_len/high_factor are unchanged (Llama 3.1's rule).
    std::string s = good;
    s.insert(
        s.size() - 1,
        R"(,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":64})");
    const ModelConfig c = config_from_json(parse(s), "config.json");
    const auto f = rope_inv_freq(c);
    check(std::fabs(f[0] - 1.0f) < 1e-7f, "llama3 rope keeps the highest frequency");
    const double last = 1.0 / std::pow(10000.0, 14.0 / 16.0);  // wavelength ~ 19,000 > 64
    check(std::fabs(f[7] - float(last / 8.0)) < 1e-9f, "llama3 rope divides the lowest frequency by factor");
  }

  // --- half precision ----------------------------------------------------------------------
  check(f16_to_f32(0x3c00) == 1.0f && f16_to_f32(0xc000) == -2.0f && f16_to_f32(0x7bff) == 65504.0f, "f16 decode");
  check(f16_to_f32(0x0001) == std::ldexp(1.0f, -24), "f16 smallest subnormal");
  check(f32_to_f16(1.0f) == 0x3c00 && f32_to_f16(65504.0f) == 0x7bff && f32_to_f16(1e6f) == 0x7c00, "f16 encode");
  check(f32_to_f16(std::ldexp(1.0f, -24)) == 0x0001 && f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00,
        "f16 encode subnormal and ties-to-even");
  check(bf16_to_f32(0x3f80) == 1.0f && f32_to_bf16(1.0f) == 0x3f80 && f32_to_bf16(1.00390625f) == 0x3f80,
        "bf16 round trip and ties-to-even");
  for (uint32_t h = 0; h < 0x7c00; h++) {  // every finite positive f16 survives f32 and back
    if (f32_to_f16(f16_to_f32(uint16_t(h))) != h) {
      check(false, "f16 round trip of " + std::to_string(h));
      break;
    }
  }

  // --- fuzzing regressions (test/fuzz/; inputs also in test/fuzz/corpus/) ------------------
  // A shape whose element count wraps past 2^64 to 0 was accepted with 0 bytes of data
  // (test/fuzz/corpus/fuzz-safetensors/regress-numel-wrap).
  expect_error("safetensors shape product overflow", "implausibly large", [] {
    const auto f =
        make_safetensors(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,0]}})", 0);
    safetensors_parse(f.data(), f.size(), "m.safetensors");
  });
  {
    // Zero-sized dimensions stay legal next to large ones (numel 0, no data).
    const auto f =
        make_safetensors(R"({"w":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}})", 0);
    check(safetensors_parse(f.data(), f.size(), "m.safetensors").size() == 1, "safetensors empty tensor, huge dims");
  }
  // head_dim near 2^31 made rope_inv_freq allocate 4 GiB from a 150-byte config.json
  // (test/fuzz/corpus/fuzz-config/regress-huge-head-dim).
  expect_error("config huge head_dim", "implausibly large", [] {
    config_from_json(parse(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,)"
                           R"("num_hidden_layers":2,"num_attention_heads":4,"head_dim":2147483646,"vocab_size":100})"),
                     "config.json");
  });
  expect_error("config huge derived head dimension", "implausibly large", [] {
    config_from_json(parse(R"({"architectures":["LlamaForCausalLM"],"hidden_size":2147483646,"intermediate_size":128,)"
                           R"("num_hidden_layers":2,"num_attention_heads":1,"vocab_size":100})"),
                     "config.json");
  });

  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
