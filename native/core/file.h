// file.h — reading whole files and bringing weight files into memory (mapped, or read into huge
// pages), with errors that name the path.
#pragma once

#include <cstddef>
#include <string>

namespace motif {

std::string path_join(const std::string& dir, const std::string& name);
bool path_exists(const std::string& path);
bool path_is_dir(const std::string& path);

// Reads a whole (small) file. `what` describes it for the error message.
std::string read_text_file(const std::string& path, const std::string& what);

// How a weight file reaches memory.
enum class FileLoad {
  Map,   // a read-only mapping of the file: no copy, pages shared with the page cache and other processes
  Read,  // read into private anonymous memory, 2 MiB-aligned and advised for transparent huge pages:
         // a copy, but streaming it (batch-1 decode) walks far fewer page-table entries
};

// The bytes of a whole file, read-only, held until destruction (see FileLoad).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path, FileLoad how = FileLoad::Map);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const unsigned char* data() const { return static_cast<const unsigned char*>(base_); }
  size_t size() const { return size_; }

 private:
  std::string path_;
  void* base_ = nullptr;
  size_t size_ = 0;
  void* region_ = nullptr;  // what munmap releases: base_ itself, or (Read) the unaligned allocation
  size_t region_size_ = 0;
};

}  // namespace motif
