// AddonTrain.cpp — AddonModel's training methods: LoRA adapter and full-parameter tensor access
// (synchronous copies), enableFullTraining, lossAndGradients and optimizerStep (Promises, off the
// JS thread).
#include "AddonModel.h"
#include "workers.h"

namespace motif_addon {

namespace {

std::vector<float> float_vector(const Napi::Value& v, const char* what) {
  auto arr = expect_float32_array(v, what);
  return std::vector<float>(arr.Data(), arr.Data() + arr.ElementLength());
}

std::vector<std::vector<int32_t>> int_lists(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of Int32Array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::vector<int32_t>> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    auto t = expect_int32_array(a.Get(i), what);
    out.emplace_back(t.Data(), t.Data() + t.ElementLength());
  }
  return out;
}

motif::GrpoBatch parse_batch(const Napi::Object& o) {
  motif::GrpoBatch b;
  b.prompts = int_lists(o.Get("prompts"), "batch.prompts");
  auto prompt_of = expect_int32_array(o.Get("promptOf"), "batch.promptOf");
  b.prompt_of.assign(prompt_of.Data(), prompt_of.Data() + prompt_of.ElementLength());
  b.completions = int_lists(o.Get("completions"), "batch.completions");
  b.rewards = float_vector(o.Get("rewards"), "batch.rewards");
  b.group_size = int32_t(expect_number(o.Get("groupSize"), "batch.groupSize"));
  b.loss_type = expect_string(o.Get("lossType"), "batch.lossType");
  b.epsilon = float(expect_number(o.Get("epsilon"), "batch.epsilon"));
  b.epsilon_high = float(expect_number(o.Get("epsilonHigh"), "batch.epsilonHigh"));
  b.beta = float(expect_number(o.Get("beta"), "batch.beta"));
  b.temperature = float(expect_number(o.Get("temperature"), "batch.temperature"));
  b.max_completion_length = int32_t(expect_number(o.Get("maxCompletionLength"), "batch.maxCompletionLength"));
  b.scale_rewards = expect_string(o.Get("scaleRewards"), "batch.scaleRewards");
  b.old_logps = float_vector(o.Get("oldLogps"), "batch.oldLogps");
  b.ref_logps = float_vector(o.Get("refLogps"), "batch.refLogps");
  b.advantages = float_vector(o.Get("advantages"), "batch.advantages");
  return b;
}

Napi::Float32Array to_js(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

class LossWorker : public PromiseWorker {
 public:
  LossWorker(Napi::Env env, AddonModel* owner, Napi::Object self, motif::GrpoBatch batch, bool accumulate, float scale,
             bool want_grads)
      : PromiseWorker(env),
        owner_(owner),
        batch_(std::move(batch)),
        accumulate_(accumulate),
        scale_(scale),
        want_(want_grads) {
    Pin("self", self);
  }

 protected:
  void Run() override {
    result_ = motif::model_grpo_loss_and_grads(owner_->model(), batch_, accumulate_, scale_, want_ ? &grads_ : nullptr);
  }
  void Settled() override { owner_->end_call(); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", result_.loss);
    o.Set("tokens", double(result_.tokens));
    o.Set("clipFraction", result_.clip_fraction);
    o.Set("kl", result_.kl);
    o.Set("logps", to_js(env, result_.logps));
    o.Set("advantages", to_js(env, result_.advantages));
    if (want_) {
      Napi::Object g = Napi::Object::New(env);
      for (const auto& kv : grads_) g.Set(kv.first, to_js(env, kv.second));
      o.Set("grads", g);
    }
    return o;
  }

 private:
  AddonModel* owner_;
  motif::GrpoBatch batch_;
  bool accumulate_;
  float scale_;
  bool want_;
  motif::GrpoResult result_;
  std::vector<std::pair<std::string, std::vector<float>>> grads_;
};

class OptimizerWorker : public PromiseWorker {
 public:
  OptimizerWorker(Napi::Env env, AddonModel* owner, Napi::Object self, motif::AdamWParams p)
      : PromiseWorker(env), owner_(owner), params_(p) {
    Pin("self", self);
  }

 protected:
  void Run() override { result_ = motif::model_optimizer_step(owner_->model(), params_); }
  void Settled() override { owner_->end_call(); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("gradNorm", result_.grad_norm);
    o.Set("skipped", result_.skipped);
    return o;
  }

 private:
  AddonModel* owner_;
  motif::AdamWParams params_;
  motif::AdamWResult result_;
};

// Converts every weight to an f32 trainable copy (seconds and gigabytes on a real model).
class EnableFullWorker : public PromiseWorker {
 public:
  EnableFullWorker(Napi::Env env, AddonModel* owner, Napi::Object self) : PromiseWorker(env), owner_(owner) {
    Pin("self", self);
  }

 protected:
  void Run() override { motif::model_full_enable(owner_->model()); }
  void Settled() override { owner_->end_call(); }

 private:
  AddonModel* owner_;
};

// Runs fn, turning motif::Error into a JS Error with its code.
template <typename Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const motif::Error& e) {
    throw make_error(env, motif::error_code_name(e.code()), e.what());
  }
}

// loraInfo / fullInfo: { names, shapes (one array of dims per name), step }.
template <typename NamesFn, typename ShapeFn>
Napi::Value trainable_info(Napi::Env env, motif::Model* model, NamesFn names_of, ShapeFn shape_of, int64_t step) {
  Napi::Object o = Napi::Object::New(env);
  const auto names = names_of(model);
  Napi::Array ns = Napi::Array::New(env, names.size()), shapes = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); i++) {
    ns.Set(uint32_t(i), names[i]);
    const auto sh = shape_of(model, names[i]);
    Napi::Array dims = Napi::Array::New(env, sh.size());
    for (size_t d = 0; d < sh.size(); d++) dims.Set(uint32_t(d), double(sh[d]));
    shapes.Set(uint32_t(i), dims);
  }
  o.Set("names", ns);
  o.Set("shapes", shapes);
  o.Set("step", double(step));
  return o;
}

// readLora / readFull (name, which) -> Float32Array: the shape call sizes the array, the read call fills it.
template <typename ShapeFn, typename ReadFn>
Napi::Value read_trainable(const Napi::CallbackInfo& info, motif::Model* model, ShapeFn shape_of, ReadFn read) {
  Napi::Env env = info.Env();
  const std::string name = expect_string(info[0], "name"), which = expect_string(info[1], "which");
  const auto sh = guarded(env, [&] { return shape_of(model, name); });
  size_t n = 1;
  for (int64_t d : sh) n *= size_t(d);
  Napi::Float32Array out = Napi::Float32Array::New(env, n);
  guarded(env, [&] { read(model, name, which, out.Data(), out.ElementLength()); });
  return out;
}

// writeLora / writeFull (name, which, Float32Array).
template <typename WriteFn>
Napi::Value write_trainable(const Napi::CallbackInfo& info, motif::Model* model, WriteFn write) {
  Napi::Env env = info.Env();
  const std::string name = expect_string(info[0], "name"), which = expect_string(info[1], "which");
  auto data = expect_float32_array(info[2], "data");
  guarded(env, [&] { write(model, name, which, data.Data(), data.ElementLength()); });
  return env.Undefined();
}

}  // namespace

void AddonModel::require_idle(Napi::Env env, const char* what) {
  if (!model_) throw make_error(env, "ERR_MOTIF_DISPOSED", std::string(what) + ": the model has been disposed");
  if (busy_.load())
    throw make_error(env, "ERR_MOTIF_BUSY", std::string(what) + ": a call on this model is still running");
}

Napi::Value AddonModel::CreateLora(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env, "createLora");
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "createLora needs an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  motif::LoraConfig c;
  c.rank = int32_t(expect_number(o.Get("rank"), "rank"));
  c.alpha = float(expect_number(o.Get("alpha"), "alpha"));
  c.rslora = o.Get("rslora").ToBoolean();
  c.targets = uint32_t(expect_number(o.Get("targets"), "targets"));
  c.seed = uint64_t(expect_number(o.Get("seed"), "seed"));
  guarded(env, [&] { motif::model_lora_create(model_, c); });
  return env.Undefined();
}

Napi::Value AddonModel::LoraInfo(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), "loraInfo");
  if (!motif::model_lora_active(model_)) return info.Env().Null();
  return trainable_info(info.Env(), model_, motif::model_lora_names, motif::model_lora_shape,
                        motif::model_lora_step(model_));
}

Napi::Value AddonModel::SetLoraEnabled(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), "setLoraEnabled");
  motif::model_lora_set_enabled(model_, info[0].ToBoolean());
  return info.Env().Undefined();
}

Napi::Value AddonModel::ReadLora(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), "readLora");
  return read_trainable(info, model_, motif::model_lora_shape, motif::model_lora_read);
}

Napi::Value AddonModel::WriteLora(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), "writeLora");
  return write_trainable(info, model_, motif::model_lora_write);
}

Napi::Value AddonModel::SetLoraStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env, "setLoraStep");
  const double step = expect_number(info[0], "step");
  guarded(env, [&] { motif::model_lora_set_step(model_, int64_t(step)); });
  return env.Undefined();
}

Napi::Value AddonModel::EnableFullTraining(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env, "enableFullTraining");
  begin_call(env, "enableFullTraining");
  auto* w = new EnableFullWorker(env, this, Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value AddonModel::FullInfo(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), "fullInfo");
  if (!motif::model_full_active(model_)) return info.Env().Null();
  return trainable_info(info.Env(), model_, motif::model_full_names, motif::model_full_shape,
                        motif::model_full_step(model_));
}

Napi::Value AddonModel::ReadFull(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), "readFull");
  return read_trainable(info, model_, motif::model_full_shape, motif::model_full_read);
}

Napi::Value AddonModel::WriteFull(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), "writeFull");
  return write_trainable(info, model_, motif::model_full_write);
}

Napi::Value AddonModel::LossAndGradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env, "lossAndGradients");
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "lossAndGradients needs a batch object");
  motif::GrpoBatch batch = parse_batch(info[0].As<Napi::Object>());
  const bool accumulate = info[1].ToBoolean();
  const float scale = float(expect_number(info[2], "scale"));
  const bool want = info[3].ToBoolean();
  begin_call(env, "lossAndGradients");
  auto* w = new LossWorker(env, this, Value(), std::move(batch), accumulate, scale, want);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value AddonModel::OptimizerStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env, "optimizerStep");
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "optimizerStep needs an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  motif::AdamWParams p;
  p.lr = float(expect_number(o.Get("lr"), "lr"));
  p.beta1 = float(expect_number(o.Get("beta1"), "beta1"));
  p.beta2 = float(expect_number(o.Get("beta2"), "beta2"));
  p.eps = float(expect_number(o.Get("eps"), "eps"));
  p.weight_decay = float(expect_number(o.Get("weightDecay"), "weightDecay"));
  p.max_grad_norm = float(expect_number(o.Get("maxGradNorm"), "maxGradNorm"));
  begin_call(env, "optimizerStep");
  auto* w = new OptimizerWorker(env, this, Value(), p);
  Napi::Promise pr = w->Promise();
  w->Queue();
  return pr;
}

}  // namespace motif_addon
