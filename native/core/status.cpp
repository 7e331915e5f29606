// status.cpp — names of error codes and the throw helper behind MOTIF_CHECK.
#include "status.h"

#include <cstring>

namespace motif {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "ERR_MOTIF_INVALID_ARGUMENT";
    case ErrorCode::Io: return "ERR_MOTIF_IO";
    case ErrorCode::Format: return "ERR_MOTIF_FORMAT";
    case ErrorCode::Unsupported: return "ERR_MOTIF_UNSUPPORTED";
    case ErrorCode::OutOfMemory: return "ERR_MOTIF_OUT_OF_MEMORY";
    case ErrorCode::Disposed: return "ERR_MOTIF_DISPOSED";
    case ErrorCode::Internal: return "ERR_MOTIF_INTERNAL";
  }
  return "ERR_MOTIF_UNKNOWN";
}

void throw_error(ErrorCode code, const char* file, int line, const std::string& message) {
  if (code == ErrorCode::Internal) {
    // Internal errors carry where they happened: they are for us, not the user.
    const char* base = std::strrchr(file, '/');
    throw Error(code, message + " (" + (base ? base + 1 : file) + ":" + std::to_string(line) + ")");
  }
  throw Error(code, message);
}

}  // namespace motif
