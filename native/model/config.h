// config.h — reading and validating a HuggingFace config.json (Qwen2 and Llama).
#pragma once

#include <string>
#include <vector>

#include "../core/json.h"
#include "../include/motif.h"

namespace motif {

// Validates a parsed config.json; `path` names the file in error messages.
ModelConfig config_from_json(const JsonValue& root, const std::string& path);
// Reads DIR/config.json.
ModelConfig config_load(const std::string& dir);
// RoPE inverse frequencies [D/2] after rope_scaling (default, linear, llama3), as
// transformers computes them.
std::vector<float> rope_inv_freq(const ModelConfig& cfg);

}  // namespace motif
