/**
 * mergeAdapter.ts — folds a PEFT LoRA adapter into its base model's weights and writes a new
 * HuggingFace folder (or, through exportGguf, one GGUF file): `mergeAdapter({ modelDir, adapterDir,
 * outDir })`, behind `motif-native merge`.
 *
 * Each adapted projection becomes W' = W + s · B · A with s = alpha / r (alpha / √r for rsLoRA),
 * the update accumulated in float64 per row and added to the weight before one rounding to the
 * stored dtype — what PEFT's `merge_and_unload` computes. Every other tensor is copied byte for
 * byte. The weights are streamed one tensor at a time into a single model.safetensors (so a model's
 * worth of f32 never sits in memory); config.json, the tokenizer and the other small files of the
 * folder are copied. The result is built under a temporary name and renamed into place; an existing
 * output is replaced only with `overwrite`, and never when it is the model or adapter folder.
 */
import { copyFile, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { convertFloats, type FloatDtype } from '../formats/dtypes.js';
import { openSafetensorsModel, type SafetensorsModel } from '../formats/safetensors.js';
import {
  encodeFloats,
  type StreamedTensor,
  tempPathFor,
  type WriteDtype,
  writeSafetensorsStreamed,
} from '../formats/safetensors-write.js';
import { MotifError } from '../native/errors.js';
import { type AdapterModelShape, loraTensorName, type ReadAdapter, readAdapter, replaceDir } from '../train/peft.js';
import { type ExportDtype, exportGguf, readExportConfig } from './exportGguf.js';

/** Options of {@link mergeAdapter}. */
export interface MergeAdapterOptions {
  /** The base model: a HuggingFace Qwen2/Llama folder. */
  modelDir: string;
  /** A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) made for that model. */
  adapterDir: string;
  /** The folder to write (format 'safetensors') or the .gguf file (format 'gguf'). */
  out: string;
  /** Default: 'gguf' when `out` ends in .gguf, else 'safetensors'. */
  format?: 'safetensors' | 'gguf';
  /** Precision of the written 2-D weights. Default: each tensor's stored dtype (GGUF: the checkpoint's). */
  dtype?: ExportDtype;
  /** Replace an existing output. Default false: an existing output is an error. */
  overwrite?: boolean;
  /** Called after each tensor is written: how many are done of how many. */
  onProgress?: (p: { done: number; total: number; tensor: string }) => void;
}

/** What {@link mergeAdapter} returns. */
export interface MergeAdapterResult {
  out: string;
  format: 'safetensors' | 'gguf';
  /** Projections that took an update (layers × targets). */
  mergedTensors: number;
  /** Tensors written in all. */
  tensorCount: number;
}

const FLOAT: Readonly<Record<string, FloatDtype>> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
const STORED: Readonly<Record<ExportDtype, 'F32' | 'F16' | 'BF16'>> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
const COPY_CHUNK = 8 * 2 ** 20;
/** Weight files of the base folder that the merged weights replace (everything else is copied). */
const WEIGHT_FILE = /(\.safetensors|\.safetensors\.index\.json|\.bin|\.bin\.index\.json|\.pt|\.pth|\.gguf)$/;

/** Copies the files of model folder `from` that are not weights (config.json, the tokenizer, ...) into `to`. */
export async function copyModelSideFiles(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from, { withFileTypes: true }))
    if (entry.isFile() && !WEIGHT_FILE.test(entry.name))
      await copyFile(path.join(from, entry.name), path.join(to, entry.name));
}

/** HF weight name of projection `target` of layer `layer`. */
function baseWeightName(layer: number, target: string): string {
  return `model.layers.${layer}.${blockOf(target)}.${target}.weight`;
}

/** The sub-module a projection lives in. */
function blockOf(target: string): 'mlp' | 'self_attn' {
  return target === 'gate_proj' || target === 'up_proj' || target === 'down_proj' ? 'mlp' : 'self_attn';
}

/** LoRA scaling s of W + s·B·A. */
export function loraScaling(lora: { rank: number; alpha: number; rslora: boolean }): number {
  return lora.rslora ? lora.alpha / Math.sqrt(lora.rank) : lora.alpha / lora.rank;
}

/**
 * W + s·B·A for one projection: `w` is [out, in] f32 (updated in place); `a` is [r, in], `b` is
 * [out, r]. The update of each row is summed in float64 and added once.
 */
export function addLoraUpdate(
  w: Float32Array,
  a: Float32Array,
  b: Float32Array,
  out: number,
  inFeatures: number,
  rank: number,
  scale: number,
): void {
  const acc = new Float64Array(inFeatures);
  for (let o = 0; o < out; o++) {
    acc.fill(0);
    for (let k = 0; k < rank; k++) {
      const c = b[o * rank + k];
      if (c === 0) continue;
      const aRow = k * inFeatures;
      for (let i = 0; i < inFeatures; i++) acc[i] += c * a[aRow + i];
    }
    const wRow = o * inFeatures;
    for (let i = 0; i < inFeatures; i++) w[wRow + i] = w[wRow + i] + scale * acc[i];
  }
}

/** Whether anything exists at path `p`. */
export async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Streams the base weights, with the adapter folded in, into `file`. */
async function writeMergedWeights(
  file: string,
  base: SafetensorsModel,
  config: AdapterModelShape,
  adapter: ReadAdapter,
  dtype: ExportDtype | undefined,
  onProgress: MergeAdapterOptions['onProgress'],
): Promise<number> {
  const scale = loraScaling(adapter.lora);
  const updates = new Map<string, { a: Float32Array; b: Float32Array }>();
  for (let layer = 0; layer < config.numLayers; layer++)
    for (const t of adapter.lora.targets) {
      const a = adapter.tensors.get(loraTensorName(layer, t, 'A'));
      const b = adapter.tensors.get(loraTensorName(layer, t, 'B'));
      if (!a || !b) throw new MotifError('ERR_MOTIF_INTERNAL', `adapter tensors of layer ${layer} ${t} are missing`);
      const name = baseWeightName(layer, t);
      if (!base.has(name))
        throw new MotifError('ERR_MOTIF_FORMAT', `${base.dir}: the adapter updates '${name}', which the model lacks`);
      updates.set(name, { a, b });
    }
  const total = base.tensors.size;
  let done = 0;
  const tensors = new Map<string, StreamedTensor>();
  for (const [name, t] of base.tensors) {
    const update = updates.get(name);
    const from = FLOAT[t.dtype];
    const to = dtype !== undefined && from !== undefined ? STORED[dtype] : t.dtype;
    if (update && !from)
      throw new MotifError(
        'ERR_MOTIF_FORMAT',
        `${t.file}: tensor '${name}' is ${t.dtype}; merging needs F32, F16 or BF16`,
      );
    const finish = () => onProgress?.({ done: ++done, total, tensor: name });
    if (!update && to === t.dtype) {
      tensors.set(name, {
        dtype: t.dtype,
        shape: t.shape,
        fill: async (write) => {
          for (let off = 0; off < t.byteLength; off += COPY_CHUNK)
            await write(await base.readRange(name, off, Math.min(COPY_CHUNK, t.byteLength - off)));
          finish();
        },
      });
      continue;
    }
    tensors.set(name, {
      dtype: to,
      shape: t.shape,
      fill: async (write) => {
        const raw = await base.readRange(name, 0, t.byteLength);
        const w = new Float32Array(t.numel);
        convertFloats(raw, from as FloatDtype, new Uint8Array(w.buffer), 'f32', t.numel);
        if (update) {
          const [out, inFeatures] = t.shape as [number, number];
          addLoraUpdate(w, update.a, update.b, out, inFeatures, adapter.lora.rank, scale);
        }
        await write(encodeFloats(w, to as WriteDtype));
        finish();
      },
    });
  }
  await writeSafetensorsStreamed(file, tensors, { metadata: { format: 'pt' } });
  return updates.size;
}

/** Writes the merged HuggingFace folder's contents into the (new, empty) folder `dir`. */
async function fillMergedFolder(
  dir: string,
  modelDir: string,
  adapter: ReadAdapter,
  config: AdapterModelShape,
  dtype: ExportDtype | undefined,
  onProgress: MergeAdapterOptions['onProgress'],
): Promise<{ merged: number; tensors: number }> {
  await copyModelSideFiles(modelDir, dir);
  const base = await openSafetensorsModel(modelDir);
  try {
    const merged = await writeMergedWeights(
      path.join(dir, 'model.safetensors'),
      base,
      config,
      adapter,
      dtype,
      onProgress,
    );
    return { merged, tensors: base.tensors.size };
  } finally {
    await base.close();
  }
}

/** Merges a LoRA adapter into its base model and writes the result (see the file comment). */
export async function mergeAdapter(options: MergeAdapterOptions): Promise<MergeAdapterResult> {
  const modelDir = path.resolve(options.modelDir);
  const adapterDir = path.resolve(options.adapterDir);
  const out = path.resolve(options.out);
  const format = options.format ?? (out.toLowerCase().endsWith('.gguf') ? 'gguf' : 'safetensors');
  if (out === modelDir || out === adapterDir)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `--out ${out} is the ${out === modelDir ? 'model' : 'adapter'} folder; write the merged model somewhere else`,
    );
  if (!options.overwrite && (await exists(out)))
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `--out ${out} already exists; choose a new path or pass --overwrite to replace it`,
    );
  const c = await readExportConfig(modelDir);
  const config: AdapterModelShape = {
    hiddenSize: c.hidden,
    numHeads: c.heads,
    numKvHeads: c.kvHeads,
    headDim: c.headDim,
    intermediateSize: c.intermediate,
    numLayers: c.layers,
  };
  const adapter = await readAdapter(adapterDir, config);
  if (format === 'safetensors') {
    let counts = { merged: 0, tensors: 0 };
    await replaceDir(out, async (tmp) => {
      counts = await fillMergedFolder(tmp, modelDir, adapter, config, options.dtype, options.onProgress);
    });
    return { out, format, mergedTensors: counts.merged, tensorCount: counts.tensors };
  }
  // GGUF: merge into a scratch folder beside the output, convert it, then remove the scratch folder.
  const scratch = tempPathFor(out);
  try {
    await replaceDir(scratch, async (tmp) => {
      await fillMergedFolder(tmp, modelDir, adapter, config, undefined, options.onProgress);
    });
    const result = await exportGguf({ modelDir: scratch, outFile: out, dtype: options.dtype });
    return {
      out,
      format,
      mergedTensors: adapter.lora.targets.length * config.numLayers,
      tensorCount: result.tensorCount,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
