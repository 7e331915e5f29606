// json.cpp — the strict recursive-descent JSON reader declared in json.h.
#include "json.h"

#include <cmath>
#include <cstdlib>

#include "status.h"

namespace motif {

bool JsonValue::is_integer() const {
  return kind_ == Kind::Number && std::isfinite(number_) && std::floor(number_) == number_ &&
         std::fabs(number_) < 9.2e18;
}

const JsonValue* JsonValue::find(const std::string& key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (const auto& m : members_)
    if (m.first == key) return &m.second;
  return nullptr;
}

const char* JsonValue::kind_name(Kind k) {
  switch (k) {
    case Kind::Null: return "null";
    case Kind::Bool: return "a boolean";
    case Kind::Number: return "a number";
    case Kind::String: return "a string";
    case Kind::Array: return "an array";
    case Kind::Object: return "an object";
  }
  return "?";
}

class JsonParser {
 public:
  JsonParser(const char* text, size_t n, const std::string& what)
      : p_(text), begin_(text), end_(text + n), what_(what) {}

  JsonValue parse_document() {
    JsonValue v = parse_value(0);
    skip_ws();
    if (p_ != end_) fail("unexpected data after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 128;
  const char* p_;
  const char* begin_;
  const char* end_;
  const std::string& what_;

  [[noreturn]] void fail(const std::string& why) const {
    int line = 1, col = 1;
    for (const char* q = begin_; q < p_ && q < end_; q++) {
      if (*q == '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    throw Error(ErrorCode::Format, what_ + ": invalid JSON at line " + std::to_string(line) + ", column " +
                                       std::to_string(col) + ": " + why);
  }

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) p_++;
  }

  bool consume_literal(const char* lit) {
    const char* q = p_;
    for (; *lit; lit++, q++)
      if (q >= end_ || *q != *lit) return false;
    p_ = q;
    return true;
  }

  JsonValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 128 levels");
    skip_ws();
    if (p_ >= end_) fail("unexpected end of input");
    JsonValue v;
    switch (*p_) {
      case '{': parse_object(v, depth); break;
      case '[': parse_array(v, depth); break;
      case '"':
        v.kind_ = JsonValue::Kind::String;
        v.string_ = parse_string();
        break;
      case 't':
        if (!consume_literal("true")) fail("expected 'true'");
        v.kind_ = JsonValue::Kind::Bool;
        v.bool_ = true;
        break;
      case 'f':
        if (!consume_literal("false")) fail("expected 'false'");
        v.kind_ = JsonValue::Kind::Bool;
        break;
      case 'n':
        if (!consume_literal("null")) fail("expected 'null'");
        break;
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) {
          v.kind_ = JsonValue::Kind::Number;
          v.number_ = parse_number();
        } else {
          fail(std::string("unexpected character '") + *p_ + "'");
        }
    }
    return v;
  }

  void parse_object(JsonValue& v, int depth) {
    v.kind_ = JsonValue::Kind::Object;
    p_++;  // '{'
    skip_ws();
    if (p_ < end_ && *p_ == '}') {
      p_++;
      return;
    }
    for (;;) {
      skip_ws();
      if (p_ >= end_ || *p_ != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_ws();
      if (p_ >= end_ || *p_ != ':') fail("expected ':' after a key");
      p_++;
      JsonValue item = parse_value(depth + 1);
      v.members_.emplace_back(std::move(key), std::move(item));
      skip_ws();
      if (p_ >= end_) fail("unexpected end of input inside an object");
      if (*p_ == ',') {
        p_++;
        continue;
      }
      if (*p_ == '}') {
        p_++;
        return;
      }
      fail("expected ',' or '}' in an object");
    }
  }

  void parse_array(JsonValue& v, int depth) {
    v.kind_ = JsonValue::Kind::Array;
    p_++;  // '['
    skip_ws();
    if (p_ < end_ && *p_ == ']') {
      p_++;
      return;
    }
    for (;;) {
      v.items_.push_back(parse_value(depth + 1));
      skip_ws();
      if (p_ >= end_) fail("unexpected end of input inside an array");
      if (*p_ == ',') {
        p_++;
        continue;
      }
      if (*p_ == ']') {
        p_++;
        return;
      }
      fail("expected ',' or ']' in an array");
    }
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xc0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += char(0xe0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    } else {
      out += char(0xf0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3f));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    }
  }

  uint32_t parse_hex4() {
    if (end_ - p_ < 4) fail("truncated \\u escape");
    uint32_t cp = 0;
    for (int i = 0; i < 4; i++) {
      const char c = *p_++;
      cp <<= 4;
      if (c >= '0' && c <= '9')
        cp |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        cp |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        cp |= uint32_t(c - 'A' + 10);
      else
        fail("bad hex digit in \\u escape");
    }
    return cp;
  }

  std::string parse_string() {
    p_++;  // opening quote
    std::string out;
    for (;;) {
      if (p_ >= end_) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(*p_++);
      if (c == '"') return out;
      if (c < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += char(c);
        continue;
      }
      if (p_ >= end_) fail("unterminated escape");
      const char e = *p_++;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xd800 && cp <= 0xdbff) {  // high surrogate: expect a low one
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') fail("unpaired surrogate in \\u escape");
            p_ += 2;
            const uint32_t lo = parse_hex4();
            if (lo < 0xdc00 || lo > 0xdfff) fail("invalid low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            fail("unpaired low surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("invalid escape '\\") + e + "'");
      }
    }
  }

  double parse_number() {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') p_++;
    if (p_ >= end_) fail("truncated number");
    if (*p_ == '0') {
      p_++;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') p_++;
    } else {
      fail("invalid number");
    }
    if (p_ < end_ && *p_ == '.') {
      p_++;
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') fail("digit expected after '.'");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') p_++;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      p_++;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) p_++;
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') fail("digit expected in exponent");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') p_++;
    }
    // strtod needs a NUL-terminated copy: the buffer may not be terminated.
    const std::string digits(start, p_);
    return std::strtod(digits.c_str(), nullptr);
  }
};

JsonValue json_parse(const char* text, size_t n, const std::string& what) {
  JsonParser parser(text, n, what);
  return parser.parse_document();
}

}  // namespace motif
