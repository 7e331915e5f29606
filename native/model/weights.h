// weights.h — safetensors files (single or sharded) memory-mapped into named tensors.
//
// Every check a hostile or truncated file could fail is made here, before any tensor is
// touched: header length inside the file, JSON well-formed, known dtype, shape x dtype
// size == byte span, spans inside the data section and not overlapping. Errors name the
// file and the tensor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/file.h"
#include "../core/tensor.h"

namespace motif {

struct SafetensorsEntry {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> shape;
  size_t begin = 0;  // byte offset of the data, from the start of the file
  size_t end = 0;
};

// Parses and validates the header of a safetensors file held in memory (data, size).
// Throws Format/Unsupported naming `path`. (Separate from mapping so it can be fuzzed.)
std::vector<SafetensorsEntry> safetensors_parse(const unsigned char* data, size_t size, const std::string& path);

// Parses model.safetensors.index.json text: tensor name -> shard file name.
std::map<std::string, std::string> safetensors_index_parse(const std::string& text, const std::string& path);

class WeightStore {
 public:
  // Opens DIR/model.safetensors, or every shard listed in DIR/model.safetensors.index.json.
  void open_dir(const std::string& dir, FileLoad how = FileLoad::Map);
  // Opens one safetensors file and adds its tensors (names must be new).
  void open_file(const std::string& path, FileLoad how = FileLoad::Map);

  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  // The tensor `name`, which must exist with exactly `shape` and a float dtype.
  Tensor get(const std::string& name, const std::vector<int64_t>& shape);
  std::vector<std::string> names() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Located {
    SafetensorsEntry entry;
    const MappedFile* file;
  };
  std::string dir_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, Located> entries_;
  std::vector<std::unique_ptr<std::vector<uint16_t>>> realigned_;  // copies of misaligned tensors
};

}  // namespace motif
