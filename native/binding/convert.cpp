// convert.cpp — implementations of the checks in convert.h.
#include "convert.h"

#include <cmath>

namespace motif_addon {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Value().Set("code", Napi::String::New(env, code));
  return err;
}

template <typename T>
static Napi::TypedArrayOf<T> expect_typed(const Napi::Value& v, napi_typedarray_type type, const char* what,
                                          const char* expected) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be " + expected);
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  if (arr.ElementLength() > 0 && arr.ArrayBuffer().Data() == nullptr)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " is backed by a detached ArrayBuffer");
  return arr;
}

Napi::TypedArrayOf<int32_t> expect_int32_array(const Napi::Value& v, const char* what) {
  return expect_typed<int32_t>(v, napi_int32_array, what, "an Int32Array");
}

Napi::TypedArrayOf<float> expect_float32_array(const Napi::Value& v, const char* what) {
  return expect_typed<float>(v, napi_float32_array, what, "a Float32Array");
}

std::string expect_string(const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

double expect_number(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be finite");
  return d;
}

}  // namespace motif_addon
