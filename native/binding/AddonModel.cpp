// AddonModel.cpp — load / forward / config / dispose for a model, as Promises off the JS thread.
#include "AddonModel.h"

#include "addon.h"
#include "workers.h"

namespace motif_addon {

namespace {

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string dir, motif::LoadParams params)
      : PromiseWorker(env), dir_(std::move(dir)), params_(std::move(params)) {}
  ~LoadWorker() override { motif::model_free(model_); }  // only non-null if never handed over

 protected:
  void Run() override { model_ = motif::model_load(dir_, params_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object obj = addon_data(env).model_ctor.New({Napi::External<motif::Model>::New(env, model_)});
    model_ = nullptr;  // owned by the AddonModel now
    return obj;
  }

 private:
  std::string dir_;
  motif::LoadParams params_;
  motif::Model* model_ = nullptr;
};

class ForwardWorker : public PromiseWorker {
 public:
  ForwardWorker(Napi::Env env, AddonModel* owner, Napi::Object self, Napi::TypedArrayOf<int32_t> tokens,
                Napi::TypedArrayOf<int32_t> seq_lens, Napi::TypedArrayOf<float> out)
      : PromiseWorker(env),
        owner_(owner),
        tokens_(tokens.Data(), tokens.Data() + tokens.ElementLength()),
        seq_lens_(seq_lens.Data(), seq_lens.Data() + seq_lens.ElementLength()),
        logits_(out.ElementLength()),
        out_(Napi::Persistent(out)) {
    // Inputs are copied and the logits computed into native memory, then copied into `out` on the
    // JS thread: a buffer detached (transferred) mid-call is never written.
    // Keep the inputs, the output and the model object alive until the worker is done.
    Pin("self", self);
    Pin("tokens", tokens);
    Pin("seqLens", seq_lens);
    Pin("out", out);
  }

 protected:
  void Run() override {
    motif::model_forward(owner_->model(), tokens_.data(), seq_lens_.data(), int32_t(seq_lens_.size()), logits_.data());
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Float32Array out = out_.Value().As<Napi::Float32Array>();
    if (out.ElementLength() != logits_.size())
      throw make_error(env, "ERR_MOTIF_INVALID_ARGUMENT", "forward: the output buffer was detached during the call");
    std::copy(logits_.begin(), logits_.end(), out.Data());
    return env.Undefined();
  }
  void Settled() override { owner_->end_call(); }

 private:
  AddonModel* owner_;
  std::vector<int32_t> tokens_;
  std::vector<int32_t> seq_lens_;
  std::vector<float> logits_;
  Napi::Reference<Napi::Float32Array> out_;
};

}  // namespace

Napi::Function AddonModel::Define(Napi::Env env) {
  return DefineClass(env, "AddonModel",
                     {
                         StaticMethod<&AddonModel::Load>("load"),
                         InstanceMethod<&AddonModel::Config>("config"),
                         InstanceMethod<&AddonModel::Info>("info"),
                         InstanceMethod<&AddonModel::Forward>("forward"),
                         InstanceMethod<&AddonModel::Dispose>("dispose"),
                         InstanceMethod<&AddonModel::Generate>("generate"),
                         InstanceMethod<&AddonModel::AbortGenerate>("abortGenerate"),
                         InstanceMethod<&AddonModel::KvCacheStats>("kvCacheStats"),
                         InstanceMethod<&AddonModel::CreateLora>("createLora"),
                         InstanceMethod<&AddonModel::LoraInfo>("loraInfo"),
                         InstanceMethod<&AddonModel::SetLoraEnabled>("setLoraEnabled"),
                         InstanceMethod<&AddonModel::ReadLora>("readLora"),
                         InstanceMethod<&AddonModel::WriteLora>("writeLora"),
                         InstanceMethod<&AddonModel::SetLoraStep>("setLoraStep"),
                         InstanceMethod<&AddonModel::EnableFullTraining>("enableFullTraining"),
                         InstanceMethod<&AddonModel::FullInfo>("fullInfo"),
                         InstanceMethod<&AddonModel::ReadFull>("readFull"),
                         InstanceMethod<&AddonModel::WriteFull>("writeFull"),
                         InstanceMethod<&AddonModel::LossAndGradients>("lossAndGradients"),
                         InstanceMethod<&AddonModel::OptimizerStep>("optimizerStep"),
                     });
}

AddonModel::AddonModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModel>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "AddonModel cannot be constructed directly; use loadModel()");
  model_ = info[0].As<Napi::External<motif::Model>>().Data();
}

AddonModel::~AddonModel() { motif::model_free(model_); }

void AddonModel::begin_call(Napi::Env env, const char* what) {
  if (!model_) throw make_error(env, "ERR_MOTIF_DISPOSED", std::string(what) + ": the model has been disposed");
  bool expected = false;
  if (!busy_.compare_exchange_strong(expected, true))
    throw make_error(env, "ERR_MOTIF_BUSY", std::string(what) + ": another call on this model is still running");
}

Napi::Value AddonModel::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  motif::LoadParams params;
  const std::string dir = expect_string(info[0], "dir");
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  params.device = expect_string(o.Get("device"), "options.device");
  params.n_threads = int(expect_number(o.Get("threads"), "options.threads"));
  params.kv_cache_bytes = size_t(expect_number(o.Get("kvCacheBytes"), "options.kvCacheBytes"));
  params.kv_block_size = int32_t(expect_number(o.Get("kvBlockSize"), "options.kvBlockSize"));
  params.max_step_tokens = int32_t(expect_number(o.Get("maxStepTokens"), "options.maxStepTokens"));
  params.weights = expect_string(o.Get("weights"), "options.weights");
  auto* worker = new LoadWorker(env, dir, params);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value AddonModel::Config(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) throw make_error(env, "ERR_MOTIF_DISPOSED", "config: the model has been disposed");
  const motif::ModelConfig& c = motif::model_config(model_);
  Napi::Object o = Napi::Object::New(env);
  o.Set("architecture", c.architecture);
  o.Set("modelType", c.model_type);
  o.Set("hiddenSize", double(c.hidden_size));
  o.Set("intermediateSize", double(c.intermediate_size));
  o.Set("numLayers", double(c.n_layers));
  o.Set("numHeads", double(c.n_heads));
  o.Set("numKvHeads", double(c.n_kv_heads));
  o.Set("headDim", double(c.head_dim));
  o.Set("vocabSize", double(c.vocab_size));
  o.Set("maxPositionEmbeddings", double(c.max_position_embeddings));
  o.Set("rmsNormEps", c.rms_norm_eps);
  o.Set("ropeTheta", c.rope_theta);
  o.Set("ropeType", c.rope_type);
  o.Set("tieWordEmbeddings", c.tie_word_embeddings);
  o.Set("qkvBias", c.qkv_bias);
  o.Set("oBias", c.o_bias);
  o.Set("mlpBias", c.mlp_bias);
  o.Set("torchDtype", c.torch_dtype);
  return o;
}

Napi::Value AddonModel::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) throw make_error(env, "ERR_MOTIF_DISPOSED", "info: the model has been disposed");
  Napi::Object o = Napi::Object::New(env);
  o.Set("backend", motif::model_backend_name(model_));
  o.Set("deviceNote", motif::model_device_note(model_));
  o.Set("weightBytes", double(motif::model_weight_bytes(model_)));
  o.Set("weightDtype", motif::model_weight_dtype(model_));
  o.Set("weightStorage", motif::model_weight_storage(model_));
  return o;
}

Napi::Value AddonModel::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto tokens = expect_int32_array(info[0], "tokens");
  auto seq_lens = expect_int32_array(info[1], "seqLens");
  auto out = expect_float32_array(info[2], "out");
  if (!model_) throw make_error(env, "ERR_MOTIF_DISPOSED", "forward: the model has been disposed");
  const motif::ModelConfig& c = motif::model_config(model_);
  size_t total = 0;
  for (size_t i = 0; i < seq_lens.ElementLength(); i++) {
    if (seq_lens[i] < 0) throw Napi::RangeError::New(env, "seqLens must be non-negative");
    total += size_t(seq_lens[i]);
  }
  if (seq_lens.ElementLength() == 0 || total != tokens.ElementLength())
    throw Napi::RangeError::New(env, "seqLens must be non-empty and sum to tokens.length");
  if (out.ElementLength() != total * size_t(c.vocab_size))
    throw Napi::RangeError::New(env, "out must hold tokens.length * vocabSize floats");
  begin_call(env, "forward");
  auto* worker = new ForwardWorker(env, this, Value(), tokens, seq_lens, out);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value AddonModel::AbortGenerate(const Napi::CallbackInfo& info) {
  abort_flag.store(true);
  return info.Env().Undefined();
}

Napi::Value AddonModel::KvCacheStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) throw make_error(env, "ERR_MOTIF_DISPOSED", "kvCacheStats: the model has been disposed");
  if (busy_.load()) throw make_error(env, "ERR_MOTIF_BUSY", "kvCacheStats: a call on this model is still running");
  const motif::KvCacheStats s = motif::model_kv_cache_stats(model_);
  Napi::Object o = Napi::Object::New(env);
  o.Set("blocks", s.n_blocks);
  o.Set("blockSize", s.block_size);
  o.Set("availableBlocks", s.available);
  o.Set("cachedBlocks", s.cached);
  o.Set("totalRefs", double(s.total_refs));
  o.Set("bytes", double(s.bytes));
  return o;
}

Napi::Value AddonModel::Dispose(const Napi::CallbackInfo& info) {
  if (busy_.load())
    throw make_error(info.Env(), "ERR_MOTIF_BUSY", "dispose: a call on this model is still running; await it first");
  motif::model_free(model_);
  model_ = nullptr;
  return info.Env().Undefined();
}

}  // namespace motif_addon
