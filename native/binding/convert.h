// convert.h — argument checks and conversions shared by the binding classes.
//
// The TypeScript layer validates options and owns the error wording for user mistakes;
// these checks only keep native code memory-safe (types, lengths, detached buffers).
#pragma once

#include <napi.h>

#include <string>

#include "../include/motif.h"

namespace motif_addon {

// A JS Error carrying `code` (ERR_MOTIF_*), built from a motif::Error or a plain message.
Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);

// Throws a TypeError naming `what` unless `v` is an Int32Array / Float32Array that is attached.
Napi::TypedArrayOf<int32_t> expect_int32_array(const Napi::Value& v, const char* what);
Napi::TypedArrayOf<float> expect_float32_array(const Napi::Value& v, const char* what);

std::string expect_string(const Napi::Value& v, const char* what);
// A finite number (TypeError otherwise).
double expect_number(const Napi::Value& v, const char* what);

}  // namespace motif_addon
