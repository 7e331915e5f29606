// status.h — the engine's one error type and the checks that raise it.
//
// Native code never aborts or exits on bad input: it throws motif::Error with a
// code and a message that names the file / tensor / field and what was expected.
// The N-API binding turns it into a JS Error (keeping `code`); C++ tests catch it.
#pragma once

#include <stdexcept>
#include <string>

namespace motif {

enum class ErrorCode {
  InvalidArgument,  // a caller passed something out of range or of the wrong shape
  Io,               // a file could not be opened, read, mapped or written
  Format,           // a file was read but its contents are not what was expected
  Unsupported,      // valid input that this build cannot handle (architecture, dtype, backend)
  OutOfMemory,      // an allocation failed
  Disposed,         // a handle was used after it was freed
  Internal,         // a bug: an invariant of our own did not hold
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] void throw_error(ErrorCode code, const char* file, int line, const std::string& message);

}  // namespace motif

// MOTIF_CHECK(cond, code, msg): throw motif::Error(code, msg) when cond is false. `msg` is any
// expression convertible to std::string and is only evaluated on failure.
#define MOTIF_CHECK(cond, code, msg)                                                        \
  do {                                                                                      \
    if (!(cond)) ::motif::throw_error(::motif::ErrorCode::code, __FILE__, __LINE__, (msg)); \
  } while (0)

// MOTIF_ASSERT(cond): an internal invariant; failing it is our bug, reported as Internal.
#define MOTIF_ASSERT(cond)                                                   \
  do {                                                                       \
    if (!(cond))                                                             \
      ::motif::throw_error(::motif::ErrorCode::Internal, __FILE__, __LINE__, \
                           std::string("internal check failed: ") + #cond);  \
  } while (0)
