// weights.cpp — safetensors header validation and the memory-mapped WeightStore.
#include "weights.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "../core/json.h"
#include "../core/status.h"

namespace motif {
namespace {

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32")
    *out = DType::F32;
  else if (s == "F16")
    *out = DType::F16;
  else if (s == "BF16")
    *out = DType::BF16;
  else
    return false;
  return true;
}

}  // namespace

std::vector<SafetensorsEntry> safetensors_parse(const unsigned char* data, size_t size, const std::string& path) {
  if (size < 8)
    throw Error(ErrorCode::Format, path + ": file is " + std::to_string(size) +
                                       " bytes, too short for a safetensors header (8-byte length + JSON)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | data[i];
  if (header_len > size - 8)
    throw Error(ErrorCode::Format, path + ": header length " + std::to_string(header_len) +
                                       " runs past the end of the file (" + std::to_string(size) +
                                       " bytes); the file is truncated or not safetensors");
  if (header_len > (uint64_t(100) << 20))
    throw Error(ErrorCode::Format, path + ": header length " + std::to_string(header_len) + " is over 100 MiB");
  const JsonValue root =
      json_parse(reinterpret_cast<const char*>(data + 8), size_t(header_len), path + " (safetensors header)");
  if (!root.is_object()) throw Error(ErrorCode::Format, path + ": safetensors header must be a JSON object");
  const size_t data_start = 8 + size_t(header_len);
  const size_t data_size = size - data_start;

  std::vector<SafetensorsEntry> out;
  for (const auto& m : root.members()) {
    if (m.first == "__metadata__") continue;
    const std::string where = path + ": tensor '" + m.first + "'";
    const JsonValue& v = m.second;
    if (!v.is_object()) throw Error(ErrorCode::Format, where + ": header entry must be an object");
    const JsonValue* dt = v.find("dtype");
    const JsonValue* shape = v.find("shape");
    const JsonValue* offs = v.find("data_offsets");
    if (!dt || !dt->is_string()) throw Error(ErrorCode::Format, where + ": 'dtype' must be a string");
    if (!shape || !shape->is_array()) throw Error(ErrorCode::Format, where + ": 'shape' must be an array");
    if (!offs || !offs->is_array() || offs->items().size() != 2 || !offs->items()[0].is_integer() ||
        !offs->items()[1].is_integer())
      throw Error(ErrorCode::Format, where + ": 'data_offsets' must be [begin, end] integers");
    SafetensorsEntry e;
    e.name = m.first;
    if (!parse_dtype(dt->as_string(), &e.type))
      throw Error(ErrorCode::Unsupported, where + " has dtype " + dt->as_string() + "; expected F32, F16 or BF16");
    if (shape->items().size() > 4) throw Error(ErrorCode::Format, where + ": more than 4 dimensions");
    uint64_t numel = 1;
    for (const auto& d : shape->items()) {
      if (!d.is_integer() || d.as_int() < 0 || d.as_int() > (int64_t(1) << 40))
        throw Error(ErrorCode::Format, where + ": shape entries must be non-negative integers");
      e.shape.push_back(d.as_int());
      // Checked before multiplying: numel * d could wrap past 2^64 (to 0) and pass afterwards.
      if (d.as_int() != 0 && numel > (uint64_t(1) << 40) / uint64_t(d.as_int()))
        throw Error(ErrorCode::Format, where + ": shape is implausibly large");
      numel *= uint64_t(d.as_int());
    }
    const int64_t b = offs->items()[0].as_int(), en = offs->items()[1].as_int();
    if (b < 0 || en < b || uint64_t(en) > data_size)
      throw Error(ErrorCode::Format, where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                                         "] run outside the data section (" + std::to_string(data_size) +
                                         " bytes); the file is truncated or corrupt");
    if (uint64_t(en - b) != numel * dtype_size(e.type))
      throw Error(ErrorCode::Format, where + ": " + std::to_string(en - b) + " bytes of data for shape " +
                                         shape_to_string(e.shape) + " of " + dt->as_string() + " (expected " +
                                         std::to_string(numel * dtype_size(e.type)) + ")");
    e.begin = data_start + size_t(b);
    e.end = data_start + size_t(en);
    out.push_back(std::move(e));
  }
  // No two tensors may share bytes.
  std::vector<const SafetensorsEntry*> sorted;
  for (const auto& e : out) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); i++) {
    if (sorted[i]->begin < sorted[i - 1]->end)
      throw Error(ErrorCode::Format, path + ": tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name +
                                         "' overlap in the data section");
  }
  return out;
}

std::map<std::string, std::string> safetensors_index_parse(const std::string& text, const std::string& path) {
  const JsonValue root = json_parse(text.data(), text.size(), path);
  const JsonValue* wm = root.find("weight_map");
  if (!wm || !wm->is_object())
    throw Error(ErrorCode::Format, path + ": field 'weight_map' must be an object of tensor name -> file name");
  std::map<std::string, std::string> out;
  for (const auto& m : wm->members()) {
    if (!m.second.is_string())
      throw Error(ErrorCode::Format, path + ": weight_map['" + m.first + "'] must be a file name string");
    const std::string& f = m.second.as_string();
    if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
      throw Error(ErrorCode::Format,
                  path + ": weight_map['" + m.first + "'] = '" + f + "' must be a plain file name in the model folder");
    out[m.first] = f;
  }
  return out;
}

void WeightStore::open_file(const std::string& path, FileLoad how) {
  auto file = std::make_unique<MappedFile>(path, how);
  const auto entries = safetensors_parse(file->data(), file->size(), path);
  for (const auto& e : entries) {
    if (entries_.count(e.name))
      throw Error(ErrorCode::Format, path + ": tensor '" + e.name + "' also appears in another shard");
    entries_[e.name] = Located{e, file.get()};
  }
  files_.push_back(std::move(file));
}

void WeightStore::open_dir(const std::string& dir, FileLoad how) {
  dir_ = dir;
  const std::string single = path_join(dir, "model.safetensors");
  const std::string index = path_join(dir, "model.safetensors.index.json");
  if (path_exists(single)) {
    open_file(single, how);
    return;
  }
  if (!path_exists(index))
    throw Error(ErrorCode::Io, "no weights in " + dir + ": expected model.safetensors or model.safetensors.index.json");
  const std::string text = read_text_file(index, "the sharded weights index");
  const auto map = safetensors_index_parse(text, index);
  std::set<std::string> shards;
  for (const auto& kv : map) shards.insert(kv.second);
  for (const auto& s : shards) {
    const std::string p = path_join(dir, s);
    if (!path_exists(p)) throw Error(ErrorCode::Io, index + " lists shard " + s + ", which is not in " + dir);
    open_file(p, how);
  }
  for (const auto& kv : map) {
    auto it = entries_.find(kv.first);
    if (it == entries_.end() || it->second.file->path() != path_join(dir, kv.second))
      throw Error(ErrorCode::Format,
                  index + ": tensor '" + kv.first + "' is mapped to " + kv.second + " but is not in it");
  }
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

Tensor WeightStore::get(const std::string& name, const std::vector<int64_t>& shape) {
  auto it = entries_.find(name);
  if (it == entries_.end())
    throw Error(ErrorCode::Format, "tensor '" + name + "' is missing from the weights in " + dir_ +
                                       " (expected shape " + shape_to_string(shape) + ")");
  const SafetensorsEntry& e = it->second.entry;
  if (e.shape != shape)
    throw Error(ErrorCode::Format, it->second.file->path() + ": tensor '" + name + "' has shape " +
                                       shape_to_string(e.shape) + ", expected " + shape_to_string(shape) +
                                       " from config.json");
  Tensor t;
  t.type = e.type;
  t.ndim = int32_t(shape.size());
  for (size_t i = 0; i < shape.size(); i++) t.shape[i] = shape[i];
  const unsigned char* p = it->second.file->data() + e.begin;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(e.type) != 0) {
    // A header whose length is not a multiple of the element size leaves data misaligned:
    // copy it once rather than read unaligned scalars.
    auto copy = std::make_unique<std::vector<uint16_t>>((e.end - e.begin + 1) / 2 + 2);
    std::memcpy(copy->data(), p, e.end - e.begin);
    t.data = copy->data();
    realigned_.push_back(std::move(copy));
  } else {
    t.data = const_cast<unsigned char*>(p);
  }
  return t;
}

}  // namespace motif
