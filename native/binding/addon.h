// addon.h — per-environment data of the addon (class constructors).
#pragma once

#include <napi.h>

namespace motif_addon {

struct AddonData {
  Napi::FunctionReference model_ctor;
};

AddonData& addon_data(Napi::Env env);

}  // namespace motif_addon
