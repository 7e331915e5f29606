// config.cpp — config.json -> ModelConfig, with an error naming the field for every problem.
#include "config.h"

#include <cmath>

#include "../core/file.h"

namespace motif {
namespace {

struct FieldReader {
  const JsonValue& root;
  const std::string& path;

  [[noreturn]] void bad(const std::string& key, const std::string& expected, const JsonValue* v) const {
    const std::string got = v ? std::string(JsonValue::kind_name(v->kind())) : "nothing (the field is missing)";
    throw Error(ErrorCode::Format, path + ": field '" + key + "' must be " + expected + ", got " + got);
  }

  int64_t positive_int(const std::string& key) const {
    const JsonValue* v = root.find(key);
    if (!v || !v->is_integer() || v->as_int() <= 0) bad(key, "a positive integer", v);
    if (v->as_int() > (int64_t(1) << 31)) bad(key, "a positive integer below 2^31", v);
    return v->as_int();
  }
  int64_t positive_int_or(const std::string& key, int64_t fallback) const {
    const JsonValue* v = root.find(key);
    if (!v || v->is_null()) return fallback;
    return positive_int(key);
  }
  double positive_number_or(const std::string& key, double fallback) const {
    const JsonValue* v = root.find(key);
    if (!v || v->is_null()) return fallback;
    if (!v->is_number() || !(v->as_number() > 0)) bad(key, "a positive number", v);
    return v->as_number();
  }
  bool bool_or(const std::string& key, bool fallback) const {
    const JsonValue* v = root.find(key);
    if (!v || v->is_null()) return fallback;
    if (!v->is_bool()) bad(key, "true or false", v);
    return v->as_bool();
  }
};

void read_rope_scaling(const JsonValue* rs, const std::string& path, ModelConfig& c) {
  if (!rs || rs->is_null()) return;
  if (!rs->is_object()) throw Error(ErrorCode::Format, path + ": field 'rope_scaling' must be null or an object");
  const JsonValue* type = rs->find("rope_type");
  if (!type) type = rs->find("type");
  if (!type || !type->is_string())
    throw Error(ErrorCode::Format, path + ": rope_scaling needs a string 'rope_type' (or 'type')");
  const FieldReader r{*rs, path};
  const std::string t = type->as_string();
  if (t == "default") return;
  if (t == "linear") {
    c.rope_type = "linear";
    c.rope_factor = r.positive_number_or("factor", 0);
    if (c.rope_factor <= 0) throw Error(ErrorCode::Format, path + ": rope_scaling.factor must be a positive number");
    return;
  }
  if (t == "llama3") {
    c.rope_type = "llama3";
    c.rope_factor = r.positive_number_or("factor", 0);
    c.rope_low_freq_factor = r.positive_number_or("low_freq_factor", 0);
    c.rope_high_freq_factor = r.positive_number_or("high_freq_factor", 0);
    c.rope_original_max_position_embeddings = r.positive_int_or("original_max_position_embeddings", 0);
    if (c.rope_factor <= 0 || c.rope_low_freq_factor <= 0 || c.rope_high_freq_factor <= 0 ||
        c.rope_original_max_position_embeddings <= 0)
      throw Error(ErrorCode::Format, path +
                                         ": rope_scaling of type llama3 needs positive factor, low_freq_factor, "
                                         "high_freq_factor and original_max_position_embeddings");
    if (c.rope_high_freq_factor == c.rope_low_freq_factor)
      throw Error(ErrorCode::Format, path + ": rope_scaling high_freq_factor must differ from low_freq_factor");
    return;
  }
  throw Error(ErrorCode::Unsupported,
              path + ": rope_scaling type '" + t + "' is not supported (supported: none, linear, llama3)");
}

}  // namespace

ModelConfig config_from_json(const JsonValue& root, const std::string& path) {
  if (!root.is_object()) throw Error(ErrorCode::Format, path + ": expected a JSON object at the top level");
  ModelConfig c;
  const JsonValue* archs = root.find("architectures");
  if (archs && archs->is_array() && !archs->items().empty() && archs->items()[0].is_string())
    c.architecture = archs->items()[0].as_string();
  const JsonValue* mt = root.find("model_type");
  if (mt && mt->is_string()) c.model_type = mt->as_string();
  if (c.architecture.empty()) {
    if (c.model_type == "qwen2")
      c.architecture = "Qwen2ForCausalLM";
    else if (c.model_type == "llama")
      c.architecture = "LlamaForCausalLM";
  }
  if (c.architecture.empty())
    throw Error(ErrorCode::Format, path +
                                       ": field 'architectures' is missing (expected [\"Qwen2ForCausalLM\"] or "
                                       "[\"LlamaForCausalLM\"])");
  if (c.architecture != "Qwen2ForCausalLM" && c.architecture != "LlamaForCausalLM")
    throw Error(ErrorCode::Unsupported, path + ": architecture '" + c.architecture +
                                            "' is not supported (supported: Qwen2ForCausalLM, LlamaForCausalLM)");
  const bool qwen2 = c.architecture == "Qwen2ForCausalLM";
  if (c.model_type.empty()) c.model_type = qwen2 ? "qwen2" : "llama";

  const FieldReader r{root, path};
  c.hidden_size = r.positive_int("hidden_size");
  c.intermediate_size = r.positive_int("intermediate_size");
  c.n_layers = r.positive_int("num_hidden_layers");
  c.n_heads = r.positive_int("num_attention_heads");
  c.n_kv_heads = r.positive_int_or("num_key_value_heads", c.n_heads);
  c.vocab_size = r.positive_int("vocab_size");
  if (c.n_heads % c.n_kv_heads != 0)
    throw Error(ErrorCode::Format, path + ": num_attention_heads (" + std::to_string(c.n_heads) +
                                       ") must be a multiple of num_key_value_heads (" + std::to_string(c.n_kv_heads) +
                                       ")");
  if (root.find("head_dim") && !root.find("head_dim")->is_null()) {
    c.head_dim = r.positive_int("head_dim");
  } else {
    if (c.hidden_size % c.n_heads != 0)
      throw Error(ErrorCode::Format,
                  path + ": hidden_size must be a multiple of num_attention_heads when head_dim is absent");
    c.head_dim = c.hidden_size / c.n_heads;
  }
  if (c.head_dim > 65536)  // rope_inv_freq and per-head buffers are sized by it: keep them bounded
    throw Error(ErrorCode::Format,
                path + ": head dimension " + std::to_string(c.head_dim) + " is implausibly large (at most 65536)");
  if (c.head_dim % 2 != 0)
    throw Error(ErrorCode::Format, path + ": head dimension must be even for RoPE, got " + std::to_string(c.head_dim));
  c.max_position_embeddings = r.positive_int_or("max_position_embeddings", qwen2 ? 32768 : 2048);
  c.rms_norm_eps = r.positive_number_or("rms_norm_eps", 1e-6);
  c.rope_theta = r.positive_number_or("rope_theta", 10000.0);
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);
  if (qwen2) {
    c.qkv_bias = true;  // Qwen2Attention: q/k/v have bias, o_proj has none
  } else {
    c.qkv_bias = c.o_bias = r.bool_or("attention_bias", false);
    c.mlp_bias = r.bool_or("mlp_bias", false);
  }
  const JsonValue* hidden_act = root.find("hidden_act");
  if (hidden_act && hidden_act->is_string() && hidden_act->as_string() != "silu")
    throw Error(ErrorCode::Unsupported,
                path + ": hidden_act '" + hidden_act->as_string() + "' is not supported (expected silu)");
  const JsonValue* dt = root.find("torch_dtype");
  if (!dt) dt = root.find("dtype");
  if (dt && dt->is_string()) c.torch_dtype = dt->as_string();
  read_rope_scaling(root.find("rope_scaling"), path, c);
  return c;
}

ModelConfig config_load(const std::string& dir) {
  const std::string path = path_join(dir, "config.json");
  const std::string text = read_text_file(path, "the model's config.json");
  return config_from_json(json_parse(text.data(), text.size(), path), path);
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int64_t D = c.head_dim;
  std::vector<float> out(size_t(D / 2));
  for (int64_t i = 0; i < D / 2; i++) {
    // transformers: 1 / base ** (arange(0, D, 2).float() / D), in float32
    const float expo = float(2 * i) / float(D);
    double f = 1.0 / std::pow(double(float(c.rope_theta)), double(expo));
    if (c.rope_type == "linear") {
      f /= c.rope_factor;
    } else if (c.rope_type == "llama3") {
      const double old_len = double(c.rope_original_max_position_embeddings);
      const double low_wavelen = old_len / c.rope_low_freq_factor;
      const double high_wavelen = old_len / c.rope_high_freq_factor;
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = f / c.rope_factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old_len / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
        f = (1.0 - smooth) * f / c.rope_factor + smooth * f;
      }
    }
    out[size_t(i)] = float(f);
  }
  return out;
}

}  // namespace motif
