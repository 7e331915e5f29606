/**
 * index.ts — the public API of motif-native. Exports only; the code lives in the modules.
 */

export * from './data/index.js';
export {
  type ExportDtype,
  type ExportGgufOptions,
  type ExportGgufResult,
  exportGguf,
} from './export/exportGguf.js';
export { type MergeAdapterOptions, type MergeAdapterResult, mergeAdapter } from './export/mergeAdapter.js';
export { buildInfo } from './info.js';
export type { GeneratedCompletion, GenerateRequest, GenerateResult } from './model/generate.js';
export {
  type Device,
  type GenerateOptions,
  type LoadModelOptions,
  loadModel,
  Model,
  type ModelConfig,
  type TokenEvent,
  type TokenInput,
} from './model/Model.js';
export * from './motif/index.js';
export {
  type BuildInfo,
  type FinishReason,
  type GenerateStats,
  type KvCacheStats,
  loadBinding,
} from './native/binding.js';
export { invalidParameterError, MotifError, type MotifErrorCode } from './native/errors.js';
export * from './report/index.js';
export * from './text/index.js';
export * from './train/index.js';
export { version } from './version.js';
