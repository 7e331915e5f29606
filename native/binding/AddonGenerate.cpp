// AddonGenerate.cpp — AddonModel.generate: requests in, completions out, off the JS thread.
//
// JS passes an array of plain request objects (prompt and stop as Int32Array; numbers for the
// rest, already validated by lib/model/Model.ts) and optionally an onToken callback for
// streaming, called through a thread-safe function as tokens are sampled. The result is
// { results: [{ completions: [{ tokens: Int32Array, logprobs: Float32Array, finishReason }] }],
//   stats: {...} }.
#include <future>

#include "AddonModel.h"
#include "workers.h"

namespace motif_addon {

namespace {

struct TokenEvent {
  int32_t request, completion, token;
  float logprob;
};

// One step's tokens on their way to JS, and the signal that JS has run the callbacks.
struct StepDelivery {
  std::vector<TokenEvent> events;
  std::promise<void> done;
};

std::vector<int32_t> int_vector(const Napi::Value& v, const char* what) {
  auto arr = expect_int32_array(v, what);
  return std::vector<int32_t>(arr.Data(), arr.Data() + arr.ElementLength());
}

motif::GenerateRequest parse_request(const Napi::Value& v, size_t index) {
  const std::string where = "requests[" + std::to_string(index) + "]";
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), where + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  motif::GenerateRequest r;
  r.prompt = int_vector(o.Get("prompt"), (where + ".prompt").c_str());
  r.n = int32_t(expect_number(o.Get("n"), (where + ".n").c_str()));
  r.max_tokens = int32_t(expect_number(o.Get("maxTokens"), (where + ".maxTokens").c_str()));
  r.sampling.temperature = float(expect_number(o.Get("temperature"), (where + ".temperature").c_str()));
  r.sampling.top_k = int32_t(expect_number(o.Get("topK"), (where + ".topK").c_str()));
  r.sampling.top_p = float(expect_number(o.Get("topP"), (where + ".topP").c_str()));
  r.sampling.min_p = float(expect_number(o.Get("minP"), (where + ".minP").c_str()));
  r.sampling.seed = uint64_t(expect_number(o.Get("seed"), (where + ".seed").c_str()));
  r.stop = int_vector(o.Get("stop"), (where + ".stop").c_str());
  return r;
}

class GenerateWorker : public PromiseWorker {
 public:
  GenerateWorker(Napi::Env env, AddonModel* owner, Napi::Object self, std::vector<motif::GenerateRequest> requests,
                 Napi::Value on_token)
      : PromiseWorker(env), owner_(owner), requests_(std::move(requests)) {
    Pin("self", self);
    if (on_token.IsFunction()) {
      tsfn_ = Napi::ThreadSafeFunction::New(env, on_token.As<Napi::Function>(), "motif-generate-tokens", 0, 1);
      streaming_ = true;
    }
  }

 protected:
  void Run() override {
    motif::GenerateHooks hooks;
    hooks.abort = &owner_->abort_flag;
    if (streaming_) {
      // Tokens are collected per step and handed to JS once per step; the engine waits until
      // JS has seen them, so events arrive in order, all before the Promise settles, and an
      // abort requested from a callback takes effect at the next step.
      hooks.on_token = [this](int32_t request, int32_t completion, int32_t token, float logprob) {
        step_events_.push_back(TokenEvent{request, completion, token, logprob});
      };
      hooks.on_step = [this] {
        if (step_events_.empty()) return;
        auto* batch = new StepDelivery{std::move(step_events_), {}};
        step_events_.clear();
        std::future<void> delivered = batch->done.get_future();
        const napi_status st = tsfn_.BlockingCall(batch, [](Napi::Env env, Napi::Function fn, StepDelivery* d) {
          try {
            for (const TokenEvent& e : d->events)
              fn.Call({Napi::Number::New(env, e.request), Napi::Number::New(env, e.completion),
                       Napi::Number::New(env, e.token), Napi::Number::New(env, e.logprob)});
          } catch (const Napi::Error&) {
            // lib/model/Model.ts catches callback errors itself; never leave the engine waiting
          }
          d->done.set_value();
          delete d;
        });
        if (st != napi_ok) {
          delete batch;  // the environment is closing: nobody will wait for the events
          return;
        }
        delivered.wait();
      };
    }
    try {
      results_ = motif::model_generate(owner_->model(), requests_, hooks, &stats_);
    } catch (...) {
      if (streaming_) tsfn_.Release();
      streaming_ = false;
      throw;
    }
    if (streaming_) tsfn_.Release();
    streaming_ = false;
  }
  void Settled() override {
    owner_->abort_flag.store(false);
    owner_->end_call();
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array results = Napi::Array::New(env, results_.size());
    for (size_t i = 0; i < results_.size(); i++) {
      Napi::Array comps = Napi::Array::New(env, results_[i].completions.size());
      for (size_t c = 0; c < results_[i].completions.size(); c++) {
        const motif::Completion& comp = results_[i].completions[c];
        Napi::Int32Array tokens = Napi::Int32Array::New(env, comp.tokens.size());
        std::copy(comp.tokens.begin(), comp.tokens.end(), tokens.Data());
        Napi::Float32Array logprobs = Napi::Float32Array::New(env, comp.logprobs.size());
        std::copy(comp.logprobs.begin(), comp.logprobs.end(), logprobs.Data());
        Napi::Object o = Napi::Object::New(env);
        o.Set("tokens", tokens);
        o.Set("logprobs", logprobs);
        o.Set("finishReason", motif::finish_reason_name(comp.finish));
        comps.Set(uint32_t(c), o);
      }
      Napi::Object r = Napi::Object::New(env);
      r.Set("completions", comps);
      results.Set(uint32_t(i), r);
    }
    Napi::Object stats = Napi::Object::New(env);
    stats.Set("steps", double(stats_.steps));
    stats.Set("promptTokens", double(stats_.prompt_tokens));
    stats.Set("prefillTokens", double(stats_.prefill_tokens));
    stats.Set("cachedTokens", double(stats_.cached_tokens));
    stats.Set("generatedTokens", double(stats_.generated_tokens));
    stats.Set("preemptions", double(stats_.preemptions));
    stats.Set("prefillSeconds", stats_.prefill_seconds);
    stats.Set("seconds", stats_.seconds);
    Napi::Object out = Napi::Object::New(env);
    out.Set("results", results);
    out.Set("stats", stats);
    return out;
  }

 private:
  AddonModel* owner_;
  std::vector<motif::GenerateRequest> requests_;
  std::vector<motif::GenerateResult> results_;
  motif::GenerateStats stats_;
  Napi::ThreadSafeFunction tsfn_;
  bool streaming_ = false;
  std::vector<TokenEvent> step_events_;
};

}  // namespace

Napi::Value AddonModel::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) throw make_error(env, "ERR_MOTIF_DISPOSED", "generate: the model has been disposed");
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "requests must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<motif::GenerateRequest> requests;
  for (uint32_t i = 0; i < arr.Length(); i++) requests.push_back(parse_request(arr.Get(i), i));
  try {
    motif::model_generate_validate(model_, requests);
  } catch (const motif::Error& e) {
    throw make_error(env, motif::error_code_name(e.code()), e.what());
  }
  begin_call(env, "generate");
  abort_flag.store(false);
  auto* worker = new GenerateWorker(env, this, Value(), std::move(requests), info[1]);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace motif_addon
