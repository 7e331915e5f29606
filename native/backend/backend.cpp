// backend.cpp — op names and the backend registry (cpu always; cuda when compiled in).
#include "backend.h"

#include "../core/status.h"

namespace motif {

const char* op_name(Op op) {
  switch (op) {
#define MOTIF_OP(name, summary) \
  case Op::name:                \
    return #name;
#include "ops.def"
#undef MOTIF_OP
    default: return "?";
  }
}

const char* op_summary(Op op) {
  switch (op) {
#define MOTIF_OP(name, summary) \
  case Op::name:                \
    return summary;
#include "ops.def"
#undef MOTIF_OP
    default: return "?";
  }
}

#ifdef MOTIF_WITH_CUDA
std::unique_ptr<Backend> backend_cuda_create(const BackendOptions& opts);  // backend-cuda.cu
std::vector<CudaDeviceInfo> cuda_devices_probe(std::string* why_none);     // backend-cuda.cu
#endif

std::vector<std::string> backends_compiled() {
#ifdef MOTIF_WITH_CUDA
  return {"cpu", "cuda"};
#else
  return {"cpu"};
#endif
}

std::vector<CudaDeviceInfo> cuda_devices(std::string* why_none) {
#ifdef MOTIF_WITH_CUDA
  return cuda_devices_probe(why_none);
#else
  if (why_none)
    *why_none = "this build has no CUDA backend (rebuild with `npm run build:cuda` where a CUDA toolkit is installed)";
  return {};
#endif
}

std::unique_ptr<Backend> backend_create(const std::string& name, const BackendOptions& opts) {
  if (name == "cpu") return backend_cpu_create(opts);
  if (name == "cpu-ref") {
    BackendOptions o = opts;
    o.use_ref = true;
    return backend_cpu_create(o);
  }
  if (name == "cuda") {
#ifdef MOTIF_WITH_CUDA
    return backend_cuda_create(opts);
#else
    std::string why;
    cuda_devices(&why);
    throw Error(ErrorCode::Unsupported, "the CUDA backend is not available: " + why);
#endif
  }
  throw Error(ErrorCode::InvalidArgument, "unknown backend '" + name + "' (expected cpu, cpu-ref or cuda)");
}

}  // namespace motif
