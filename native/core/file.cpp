// file.cpp — POSIX implementations of the helpers in file.h.
#include "file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "status.h"

namespace motif {

std::string path_join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool path_is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string read_text_file(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::Io, "cannot open " + what + " at " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw Error(ErrorCode::Io, "cannot read " + what + " at " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
    if (out.size() > (size_t(64) << 20)) {
      ::close(fd);
      throw Error(ErrorCode::Format, path + ": larger than 64 MiB, which is not a plausible " + what);
    }
  }
  ::close(fd);
  return out;
}

namespace {

// Reads all of fd into buf (size bytes), naming `path` in errors.
void read_fully(int fd, unsigned char* buf, size_t size, const std::string& path) {
  size_t done = 0;
  while (done < size) {
    const size_t chunk = std::min<size_t>(size - done, size_t(1) << 30);
    const ssize_t n = ::pread(fd, buf + done, chunk, off_t(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Error(ErrorCode::Io, "cannot read weight file " + path + " at byte " + std::to_string(done) + ": " +
                                     (n == 0 ? std::string("the file is shorter than it was") : std::strerror(errno)));
    done += size_t(n);
  }
}

}  // namespace

MappedFile::MappedFile(const std::string& path, FileLoad how) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::Io, "cannot open weight file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(ErrorCode::Io, "cannot stat " + path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorCode::Io, path + " is not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    return;
  }
  if (how == FileLoad::Map) {
    base_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base_ == MAP_FAILED) {
      const int err = errno;
      base_ = nullptr;
      ::close(fd);
      throw Error(ErrorCode::Io, "cannot memory-map " + path + ": " + std::strerror(err));
    }
    region_ = base_;
    region_size_ = size_;
    ::close(fd);
    return;
  }
  // Read: one extra huge page of slack lets the data start on a 2 MiB boundary.
  const size_t huge = size_t(2) << 20;
  region_size_ = (size_ + huge - 1) / huge * huge + huge;
  region_ = ::mmap(nullptr, region_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region_ == MAP_FAILED) {
    const int err = errno;
    region_ = nullptr;
    ::close(fd);
    throw Error(ErrorCode::OutOfMemory, "cannot allocate " + std::to_string(size_ >> 20) + " MiB to read " + path +
                                            " into memory: " + std::strerror(err) + " (load with weights: 'map')");
  }
  auto* aligned = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(region_) + huge - 1) & ~(huge - 1));
  ::madvise(aligned, size_, MADV_HUGEPAGE);  // advice only: without THP the pages are simply 4 KiB
  try {
    read_fully(fd, aligned, size_, path);
  } catch (...) {
    ::munmap(region_, region_size_);
    region_ = nullptr;
    ::close(fd);
    throw;
  }
  ::close(fd);
  ::mprotect(aligned, size_, PROT_READ);  // the weights are never written
  base_ = aligned;
}

MappedFile::~MappedFile() {
  if (region_) ::munmap(region_, region_size_);
}

}  // namespace motif
