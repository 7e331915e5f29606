// addon.cpp — registration of the motif-native addon: classes and module functions only.
// lib/native/binding.ts is the one place that loads it and documents its types.
#include "addon.h"

#include <napi.h>

#include "../include/motif.h"
#include "AddonModel.h"

namespace motif_addon {

AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// buildInfo() -> { version, backends, simd, defaultThreads, cudaDevices, cudaNote }
static Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const motif::BuildInfo b = motif::build_info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", b.version);
  Napi::Array backends = Napi::Array::New(env, b.backends.size());
  for (size_t i = 0; i < b.backends.size(); i++) backends.Set(uint32_t(i), b.backends[i]);
  o.Set("backends", backends);
  o.Set("simd", b.simd);
  o.Set("defaultThreads", b.default_threads);
  Napi::Array devices = Napi::Array::New(env, b.cuda_devices.size());
  for (size_t i = 0; i < b.cuda_devices.size(); i++) {
    const auto& d = b.cuda_devices[i];
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("index", d.index);
    dev.Set("name", d.name);
    dev.Set("totalMemory", double(d.total_memory));
    dev.Set("computeCapability", std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor));
    devices.Set(uint32_t(i), dev);
  }
  o.Set("cudaDevices", devices);
  o.Set("cudaNote", b.cuda_note);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function model = AddonModel::Define(env);
  data->model_ctor = Napi::Persistent(model);
  env.SetInstanceData<AddonData>(data);
  exports.Set("AddonModel", model);
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  return exports;
}

}  // namespace motif_addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return motif_addon::Init(env, exports); }

NODE_API_MODULE(motif_native, InitModule)
