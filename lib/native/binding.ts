/**
 * binding.ts — the only module that loads the native addon, and the typed contract of what it exports.
 *
 * The addon is found with node-gyp-build: prebuilds/<platform>-<arch>/ first, then the
 * source build in build/Release. When nothing loads, one MotifError says what was tried,
 * why each failed, and how to fix it. MOTIF_ADDON_PATH=/path/to/motif_native.node overrides
 * that pick (scripts/ci-hardening.sh uses it to run the addon tests on a sanitized build).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MotifError } from './errors.js';

/** Shapes and dtypes: Int32Array token ids; Float32Array logits, row-major [tokens x vocab]. */
export interface AddonModel {
  config(): NativeModelConfig;
  info(): { backend: string; deviceNote: string; weightBytes: number; weightDtype: string; weightStorage: string };
  /** tokens: Int32Array [T]; seqLens: Int32Array [n] summing to T; out: Float32Array [T * vocab]. */
  forward(tokens: Int32Array, seqLens: Int32Array, out: Float32Array): Promise<void>;
  dispose(): void;
  /** requests: validated plain objects; onToken streams (request, completion, token, logprob). */
  generate(
    requests: NativeGenerateRequest[],
    onToken?: (request: number, completion: number, token: number, logprob: number) => void,
  ): Promise<{ results: NativeGenerateResult[]; stats: GenerateStats }>;
  /** Ends the generate call in flight early (its unfinished completions get finishReason 'abort'). */
  abortGenerate(): void;
  kvCacheStats(): KvCacheStats;
  createLora(config: { rank: number; alpha: number; rslora: boolean; targets: number; seed: number }): void;
  /** null without an adapter; names are PEFT tensor names, shapes [rows, cols]. */
  loraInfo(): { names: string[]; shapes: Array<[number, number]>; step: number } | null;
  setLoraEnabled(on: boolean): void;
  readLora(name: string, which: string): Float32Array;
  writeLora(name: string, which: string, data: Float32Array): void;
  setLoraStep(step: number): void;
  /** Converts every weight to an f32 trainable tensor (full-parameter training). */
  enableFullTraining(): Promise<void>;
  /** null unless full-parameter training is on; names are HF weight names, shapes 1-D or 2-D. */
  fullInfo(): { names: string[]; shapes: number[][]; step: number } | null;
  readFull(name: string, which: string): Float32Array;
  writeFull(name: string, which: string, data: Float32Array): void;
  lossAndGradients(
    batch: Record<string, unknown>,
    accumulate: boolean,
    scale: number,
    wantGrads: boolean,
  ): Promise<{
    loss: number;
    tokens: number;
    clipFraction: number;
    kl: number;
    logps: Float32Array;
    advantages: Float32Array;
    grads?: Record<string, Float32Array>;
  }>;
  optimizerStep(o: {
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    maxGradNorm: number;
  }): Promise<{ gradNorm: number; skipped: boolean }>;
}

export interface NativeGenerateRequest {
  prompt: Int32Array;
  n: number;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed: number;
  stop: Int32Array;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface NativeGenerateResult {
  completions: Array<{ tokens: Int32Array; logprobs: Float32Array; finishReason: FinishReason }>;
}

/** What one generate call did. cachedTokens / (cachedTokens + prefillTokens) is the prefix-cache hit rate. */
export interface GenerateStats {
  steps: number;
  promptTokens: number;
  prefillTokens: number;
  cachedTokens: number;
  generatedTokens: number;
  preemptions: number;
  prefillSeconds: number;
  seconds: number;
}

export interface KvCacheStats {
  blocks: number;
  blockSize: number;
  availableBlocks: number;
  cachedBlocks: number;
  /** Sum of block reference counts: 0 whenever no call is running (nothing leaked). */
  totalRefs: number;
  bytes: number;
}

export interface NativeLoadOptions {
  device: string;
  threads: number;
  kvCacheBytes: number;
  kvBlockSize: number;
  maxStepTokens: number;
  weights: string;
}

export interface NativeModelConfig {
  architecture: string;
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeType: string;
  tieWordEmbeddings: boolean;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  torchDtype: string;
}

export interface BuildInfo {
  version: string;
  backends: string[];
  simd: string;
  defaultThreads: number;
  cudaDevices: Array<{ index: number; name: string; totalMemory: number; computeCapability: string }>;
  cudaNote: string;
}

export interface BindingModule {
  AddonModel: { load(dir: string, options: NativeLoadOptions): Promise<AddonModel> };
  buildInfo(): BuildInfo;
}

/** The package root (holds package.json, build/, prebuilds/): found by walking up from this file,
 * which sits at lib/native/ in the sources and dist/lib/native/ when compiled. */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native', 'sources.json'))) return dir;
    dir = dirname(dir);
  }
  throw new MotifError(
    'ERR_MOTIF_ADDON_LOAD',
    `motif-native: cannot find the package root above ${fileURLToPath(import.meta.url)}`,
  );
})();

let cached: BindingModule | undefined;

/** Loads the addon once; throws a MotifError (ERR_MOTIF_ADDON_LOAD) explaining how to fix a failure. */
export function loadBinding(): BindingModule {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const causes: string[] = [];
  let path: string | undefined = process.env.MOTIF_ADDON_PATH || undefined;
  if (!path) {
    try {
      path = (require('node-gyp-build') as { path(dir: string): string }).path(packageRoot);
    } catch (err) {
      causes.push(`no addon found: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (path) {
    try {
      cached = require(path) as BindingModule;
      return cached;
    } catch (err) {
      causes.push(`${path} failed to load: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new MotifError(
    'ERR_MOTIF_ADDON_LOAD',
    [
      `motif-native could not load its native addon (Node ${process.version}, ${process.platform}-${process.arch}).`,
      ...causes.map((c) => `  - ${c}`),
      'Possible fixes:',
      '  - build it from source: `npm run build:native` in the motif-native folder',
      '    (needs CMake >= 3.18 and a C++17 compiler; without CMake, node-gyp and binding.gyp are used)',
      '  - if you upgraded Node or moved between machines, rebuild with `npm rebuild motif-native`',
      '  - a CUDA build that fails to load: rebuild without CUDA with `MOTIF_CUDA=OFF npm run build:native`',
    ].join('\n'),
  );
}
