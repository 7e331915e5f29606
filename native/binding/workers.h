// workers.h — the AsyncWorker base every long native call uses: Execute runs off the JS
// thread with no N-API calls; the result settles a Promise; motif::Error keeps its code.
#pragma once

#include <napi.h>

#include <functional>
#include <string>

#include "convert.h"

namespace motif_addon {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        pinned_(Napi::Persistent(Napi::Object::New(env))) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  // Keeps `value` alive (not garbage-collected) until the worker is destroyed: inputs,
  // outputs and the model object a running Execute reads or writes.
  void Pin(const char* key, Napi::Value value) { pinned_.Set(key, value); }

 protected:
  // Work done off the JS thread. Throw motif::Error (or anything) to reject.
  virtual void Run() = 0;
  // Builds the resolution value on the JS thread.
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  // Called on the JS thread first thing when the work settles, before the Promise does.
  virtual void Settled() {}

 private:
  void Execute() final {
    try {
      Run();
    } catch (const motif::Error& e) {
      code_ = motif::error_code_name(e.code());
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "ERR_MOTIF_OUT_OF_MEMORY";
      SetError("out of memory");
    } catch (const std::exception& e) {
      code_ = "ERR_MOTIF_INTERNAL";
      SetError(std::string("internal error: ") + e.what());
    } catch (...) {
      code_ = "ERR_MOTIF_INTERNAL";
      SetError("internal error: unknown exception");
    }
  }
  void OnOK() final {
    Napi::HandleScope scope(Env());
    Settled();
    try {
      deferred_.Resolve(Result(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) final {
    Napi::HandleScope scope(Env());
    Settled();
    deferred_.Reject(make_error(Env(), code_, e.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference pinned_;
  std::string code_ = "ERR_MOTIF_INTERNAL";
};

}  // namespace motif_addon
