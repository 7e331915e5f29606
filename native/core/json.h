// json.h — a small strict JSON reader for the files a model folder holds.
//
// config.json, safetensors headers, model.safetensors.index.json and adapter_config.json
// are all read with this. It is strict (RFC 8259: no comments, no trailing commas),
// bounded in nesting depth, and reports errors as "<what>: line L, column C: <why>".
// Objects keep their key order. Numbers are doubles (exact for integers below 2^53,
// which covers every byte offset a real file has).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace motif {

class JsonValue {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }
  // True for a number with no fractional part that fits in int64.
  bool is_integer() const;

  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  int64_t as_int() const { return int64_t(number_); }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }

  // Object lookup; nullptr when absent or when this is not an object.
  const JsonValue* find(const std::string& key) const;

  static const char* kind_name(Kind k);

 private:
  friend class JsonParser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

// Parses `text` (n bytes). `what` names the source in error messages (a file path, or
// "safetensors header of <file>"). Throws motif::Error(Format) on malformed input.
JsonValue json_parse(const char* text, size_t n, const std::string& what);

}  // namespace motif
