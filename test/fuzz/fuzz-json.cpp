// fuzz-json.cpp — libFuzzer target for core/json.h json_parse on arbitrary bytes.
//
// Expected outcomes: a JsonValue, or motif::Error(Format). On success the whole tree is walked
// (every accessor touched) and its depth must stay within the parser's documented bound.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../../native/core/json.h"
#include "fuzz-common.h"

using motif::JsonValue;

namespace {

// Walks every node; returns the nesting depth (a scalar is depth 0).
int walk(const JsonValue& v, size_t* nodes) {
  (*nodes)++;
  int depth = 0;
  switch (v.kind()) {
    case JsonValue::Kind::Null: FUZZ_EXPECT(v.is_null()); break;
    case JsonValue::Kind::Bool: (void)v.as_bool(); break;
    case JsonValue::Kind::Number:
      // as_int() is only meaningful (and defined) for is_integer() numbers.
      if (v.is_integer()) (void)v.as_int();
      break;
    case JsonValue::Kind::String: (void)v.as_string().size(); break;
    case JsonValue::Kind::Array:
      for (const auto& item : v.items()) {
        const int d = walk(item, nodes) + 1;
        if (d > depth) depth = d;
      }
      break;
    case JsonValue::Kind::Object:
      for (const auto& m : v.members()) {
        FUZZ_EXPECT(v.find(m.first) != nullptr);
        const int d = walk(m.second, nodes) + 1;
        if (d > depth) depth = d;
      }
      break;
  }
  FUZZ_EXPECT(JsonValue::kind_name(v.kind()) != nullptr);
  return depth;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_run([&] {
    // Parse from an exact-size heap copy so ASan catches any read past the end (the parser must
    // not rely on a NUL terminator).
    std::string copy(reinterpret_cast<const char*>(data), size);
    const JsonValue v = motif::json_parse(copy.data(), size, "fuzz.json");
    size_t nodes = 0;
    FUZZ_EXPECT(walk(v, &nodes) <= 129);  // json.h: nesting is bounded (128 levels below the root)
    FUZZ_EXPECT(nodes <= size);           // every node consumes at least one input byte
  });
  return 0;
}
