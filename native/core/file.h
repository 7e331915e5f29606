// file.h — reading whole files and memory-mapping weight files, with errors that name the path.
#pragma once

#include <cstddef>
#include <string>

namespace motif {

std::string path_join(const std::string& dir, const std::string& name);
bool path_exists(const std::string& path);
bool path_is_dir(const std::string& path);

// Reads a whole (small) file. `what` describes it for the error message.
std::string read_text_file(const std::string& path, const std::string& what);

// A read-only private mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
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
};

}  // namespace motif
