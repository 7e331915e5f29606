// AddonModel.h — the JS handle of a loaded model (lib/model/Model.ts wraps it).
#pragma once

#include <napi.h>

#include <atomic>

#include "../include/motif.h"

namespace motif_addon {

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  // load(dir: string, options: {device, threads, kvCacheBytes, kvBlockSize, maxStepTokens}) -> Promise<AddonModel>
  static Napi::Value Load(const Napi::CallbackInfo& info);

  explicit AddonModel(const Napi::CallbackInfo& info);
  ~AddonModel() override;

  motif::Model* model() const { return model_; }
  // Takes the in-flight slot; throws a JS Error when disposed or already busy.
  void begin_call(Napi::Env env, const char* what);
  void end_call() { busy_.store(false); }

 private:
  Napi::Value Config(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  // forward(tokens: Int32Array, seqLens: Int32Array, out: Float32Array) -> Promise<void>
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // generate(requests: object[], onToken?: fn) -> Promise<{ results, stats }> (AddonGenerate.cpp)
  Napi::Value Generate(const Napi::CallbackInfo& info);
  // abortGenerate(): makes the generate call in flight finish early with finishReason 'abort'.
  Napi::Value AbortGenerate(const Napi::CallbackInfo& info);
  Napi::Value KvCacheStats(const Napi::CallbackInfo& info);
  // Training (AddonTrain.cpp): the LoRA adapter, GRPO loss and gradients, AdamW.
  Napi::Value CreateLora(const Napi::CallbackInfo& info);
  Napi::Value LoraInfo(const Napi::CallbackInfo& info);
  Napi::Value SetLoraEnabled(const Napi::CallbackInfo& info);
  Napi::Value ReadLora(const Napi::CallbackInfo& info);
  Napi::Value WriteLora(const Napi::CallbackInfo& info);
  Napi::Value SetLoraStep(const Napi::CallbackInfo& info);
  Napi::Value EnableFullTraining(const Napi::CallbackInfo& info);
  Napi::Value FullInfo(const Napi::CallbackInfo& info);
  Napi::Value ReadFull(const Napi::CallbackInfo& info);
  Napi::Value WriteFull(const Napi::CallbackInfo& info);
  Napi::Value LossAndGradients(const Napi::CallbackInfo& info);
  Napi::Value OptimizerStep(const Napi::CallbackInfo& info);
  // Throws unless the model is live and idle (for synchronous calls that touch native state).
  void require_idle(Napi::Env env, const char* what);

 public:
  std::atomic<bool> abort_flag{false};

 private:
  motif::Model* model_ = nullptr;
  std::atomic<bool> busy_{false};
};

}  // namespace motif_addon
