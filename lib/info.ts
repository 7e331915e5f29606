/**
 * info.ts — what this installation can do: version, backends compiled in, CUDA devices, SIMD, threads.
 */
import { type BuildInfo, loadBinding } from './native/binding.js';

/** The addon's build and device report (the data behind `motif-native info`). */
export function buildInfo(): BuildInfo {
  return loadBinding().buildInfo();
}
