// backend-cuda.cu — the CUDA backend: device discovery and the Backend vtable on the GPU.
//
// Built when CMake finds a CUDA toolkit (MOTIF_CUDA=AUTO|ON). cudart is linked statically
// and finds the driver at run time, so an addon built with CUDA still loads and runs on
// the CPU on a machine with no driver or GPU: cuda_devices_probe() then reports why.
//
// Status: device discovery is complete; the op kernels are not written yet (issue #6), so
// backend_cuda_create() refuses with a clear message instead of running anything.
#include <cuda_runtime.h>

#include "../../core/status.h"
#include "../backend.h"

namespace motif {

std::vector<CudaDeviceInfo> cuda_devices_probe(std::string* why_none) {
  std::vector<CudaDeviceInfo> out;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (why_none) *why_none = std::string("the CUDA runtime found no usable device (") + cudaGetErrorString(err) + ")";
    cudaGetLastError();  // clear the sticky error state
    return out;
  }
  for (int i = 0; i < count; i++) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    CudaDeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.total_memory = prop.totalGlobalMem;
    d.compute_major = prop.major;
    d.compute_minor = prop.minor;
    out.push_back(d);
  }
  if (out.empty() && why_none) *why_none = "the CUDA runtime reports no devices";
  return out;
}

std::unique_ptr<Backend> backend_cuda_create(const BackendOptions& opts) {
  std::string why;
  const auto devices = cuda_devices_probe(&why);
  if (devices.empty()) throw Error(ErrorCode::Unsupported, "the CUDA backend cannot run: " + why);
  if (opts.device < 0 || opts.device >= int(devices.size()))
    throw Error(ErrorCode::InvalidArgument, "CUDA device " + std::to_string(opts.device) + " does not exist (" +
                                                std::to_string(devices.size()) + " found)");
  throw Error(ErrorCode::Unsupported,
              "the CUDA backend's kernels are not implemented yet in this version; use device: 'cpu'");
}

}  // namespace motif
